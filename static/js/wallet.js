// The wallet page: live balances, the demo faucet, deposit addresses, withdrawals and the
// first page of the ledger, all through the REST API and the private balances stream.
import { ApiError, api, del, get, newestRead, post } from "./api.js";
import * as D from "./decimal.js";
import { dateTime, escapeHtml, group, label, notice } from "./format.js";
import { streams } from "./ws.js";

const assets = Object.fromEntries(
  JSON.parse(document.getElementById("wallet-assets").textContent).map((row) => [row.asset, row]),
);
let savedAddresses = JSON.parse(document.getElementById("wallet-addresses").textContent);
const onFirstLedgerPage = !new URLSearchParams(location.search).get("page") ||
  new URLSearchParams(location.search).get("page") === "1";

function describe(error) {
  return error instanceof ApiError ? error.describe() : "Something went wrong. Please try again.";
}

function showError(id, error) {
  const box = document.getElementById(id);
  box.textContent = describe(error);
  box.hidden = false;
}

function hide(id) {
  document.getElementById(id).hidden = true;
}

// --- balances -------------------------------------------------------------------------------

function renderBalance(asset, available, locked) {
  const row = document.querySelector(`#balances tr[data-asset="${CSS.escape(asset)}"]`);
  if (!row) return;
  const places = assets[asset]?.precision ?? 0;
  const a = D.parse(available);
  const l = D.parse(locked);
  const total = { n: a.n * 10n ** BigInt(Math.max(a.e, l.e) - a.e) + l.n * 10n ** BigInt(Math.max(a.e, l.e) - l.e), e: Math.max(a.e, l.e) };
  for (const [field, value] of [["available", a], ["locked", l], ["total", total]]) {
    const cell = row.querySelector(`[data-field="${field}"]`);
    const text = group(D.format(value, places, Math.max(places, 8)));
    if (cell.textContent !== text) {
      cell.textContent = text;
      cell.classList.remove("flash-up");
      void cell.offsetWidth;
      cell.classList.add("flash-up");
    }
  }
}

// Each balance event schedules a read a moment later; an older read that arrives after a
// newer one would put the page back: the newest read wins.
const balancesRead = newestRead();

async function loadBalances() {
  const newest = balancesRead();
  const all = await get("/api/v1/account/balance");
  if (!newest()) return;
  for (const [asset, row] of Object.entries(all)) renderBalance(asset, row.available, row.locked);
}

for (const row of document.querySelectorAll("#balances tr[data-asset]")) {
  for (const cell of row.querySelectorAll("[data-field]")) cell.textContent = group(cell.textContent.trim());
}

// --- ledger (first page only: older pages do not change) ------------------------------------

async function loadLedger() {
  if (!onFirstLedgerPage) return;
  const page = await get("/api/v1/wallets/ledger?page_size=25");
  const body = document.querySelector("#ledger-table tbody");
  if (!page.results.length) return;
  body.innerHTML = page.results
    .map((entry) => {
      const change = entry.available_delta.startsWith("-") ? "down" : Number(entry.available_delta) ? "up" : "";
      const reference = entry.reference_id !== null ? `${entry.reference_type} #${entry.reference_id}` : entry.reference_type;
      return `<tr><td class="muted">${dateTime(entry.created_at)}</td><td>${escapeHtml(entry.asset)}</td>
        <td>${escapeHtml(label(entry.kind))}</td><td class="num ${change}">${escapeHtml(entry.available_delta)}</td>
        <td class="num muted">${escapeHtml(entry.locked_delta)}</td><td class="hide-narrow muted" title="${escapeHtml(entry.memo)}">${escapeHtml(reference)}</td></tr>`;
    })
    .join("");
}

function refresh() {
  loadBalances().catch(() => {});
  loadLedger().catch(() => {});
}

// --- demo deposit ---------------------------------------------------------------------------

const depositForm = document.getElementById("demo-deposit-form");
depositForm?.addEventListener("submit", async (event) => {
  event.preventDefault();
  hide("deposit-error");
  const button = depositForm.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const deposit = await post("/api/v1/wallets/deposits", {
      asset: depositForm.asset.value,
      amount: depositForm.amount.value.trim(),
    });
    notice(document.getElementById("deposit-status"), `Deposited ${group(deposit.amount)} ${deposit.asset}.`);
    depositForm.amount.value = "";
    refresh();
  } catch (error) {
    showError("deposit-error", error);
  } finally {
    button.disabled = false;
  }
});

// --- deposit address ------------------------------------------------------------------------

const addressForm = document.getElementById("address-form");
const copyButton = document.getElementById("copy-address");

async function loadAddress() {
  hide("address-error");
  const asset = addressForm.asset.value;
  try {
    const address = await get(`/api/v1/wallets/deposit-address/${encodeURIComponent(asset)}`);
    document.getElementById("deposit-address").textContent = address.address;
    document.getElementById("address-note").textContent =
      `Only send ${address.asset} to this address. Credited after ${address.confirmations_required} confirmation${address.confirmations_required === 1 ? "" : "s"}.`;
    copyButton.hidden = !navigator.clipboard;
  } catch (error) {
    showError("address-error", error);
  }
}

addressForm.addEventListener("submit", (event) => event.preventDefault());
addressForm.asset.addEventListener("change", loadAddress);
copyButton.addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(document.getElementById("deposit-address").textContent);
    copyButton.textContent = "Copied";
  } catch {
    copyButton.textContent = "Select and copy";
  }
  setTimeout(() => (copyButton.textContent = "Copy"), 2000);
});
loadAddress();

// --- withdrawals ----------------------------------------------------------------------------

const withdrawForm = document.getElementById("withdraw-form");

function renderTerms() {
  const asset = assets[withdrawForm.asset.value];
  document.getElementById("withdraw-terms").textContent = asset
    ? `Minimum ${group(asset.min_withdrawal)} ${asset.asset}; network fee ${group(asset.withdrawal_fee)} ${asset.asset}, reserved with the amount. Available: ${group(asset.available)} ${asset.asset}.`
    : "";
}

const CANCELLABLE = new Set(["awaiting_confirmation", "requested", "awaiting_second_approval"]);
const STATUS_LABELS = {
  awaiting_confirmation: "Awaiting email confirmation",
  requested: "Awaiting review",
  awaiting_second_approval: "Awaiting second approval",
  expired: "Expired unconfirmed",
};

function withdrawalRow(w) {
  const cancel = CANCELLABLE.has(w.status)
    ? `<button type="button" class="btn btn-small" data-cancel-withdrawal="${w.id}">Cancel</button>`
    : "";
  return `<tr data-withdrawal-id="${w.id}"><td class="muted">${dateTime(w.created_at)}</td>
    <td class="num" title="to ${escapeHtml(w.address)}, fee ${escapeHtml(w.fee)}">${group(w.amount)} ${escapeHtml(w.asset)}</td>
    <td data-field="status">${escapeHtml(STATUS_LABELS[w.status] || label(w.status))}</td><td class="actions">${cancel}</td></tr>`;
}

// The destination: a saved address of the chosen asset, or (allow-list off) one typed in.
const allowlistOnly = () => withdrawForm.dataset.allowlist === "on";

function renderDestinations() {
  const select = withdrawForm.address_id;
  const chosen = select.value;
  const now = Date.now();
  const options = savedAddresses
    .filter((a) => a.asset === withdrawForm.asset.value)
    .map((a) => {
      const usable = Date.parse(a.usable_from) <= now;
      const note = usable ? "" : ` (usable from ${dateTime(a.usable_from)})`;
      return `<option value="${a.id}"${usable ? "" : " disabled"}>${escapeHtml(a.label)}: ${escapeHtml(a.address)}${escapeHtml(note)}</option>`;
    });
  if (!allowlistOnly()) options.unshift('<option value="">Type an address…</option>');
  else if (!options.length) options.push('<option value="" disabled selected>No saved address of this asset</option>');
  select.innerHTML = options.join("");
  if ([...select.options].some((o) => o.value === chosen && !o.disabled)) select.value = chosen;
  document.getElementById("withdraw-address-row").hidden = Boolean(select.value) || allowlistOnly();
}

async function loadLimit() {
  const limit = await get("/api/v1/wallets/withdrawal-limits");
  const box = document.getElementById("withdraw-limit");
  box.innerHTML = limit.tier
    ? `24-hour limit (${escapeHtml(limit.tier_name)}): <strong id="limit-remaining">${group(limit.remaining)}</strong> of ${group(limit.daily_limit)} ${escapeHtml(limit.reference_asset)} left`
    : "No withdrawals until your email address is confirmed";
}

withdrawForm.address_id.addEventListener("change", renderDestinations);
withdrawForm.asset.addEventListener("change", renderDestinations);
withdrawForm.asset.addEventListener("change", renderTerms);
withdrawForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  hide("withdraw-error");
  const button = withdrawForm.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const body = { asset: withdrawForm.asset.value, amount: withdrawForm.amount.value.trim() };
    if (withdrawForm.address_id.value) body.address_id = Number(withdrawForm.address_id.value);
    else body.address = withdrawForm.address.value.trim();
    // Present only with two-factor authentication on: a withdrawal then needs a code.
    if (withdrawForm.otp_code) body.otp_code = withdrawForm.otp_code.value.trim();
    const withdrawal = await post("/api/v1/wallets/withdrawals", body);
    document.querySelector("#withdrawals .empty-row")?.remove();
    document.querySelector("#withdrawals tbody").insertAdjacentHTML("afterbegin", withdrawalRow(withdrawal));
    notice(
      document.getElementById("withdraw-status"),
      `Withdrawal of ${group(withdrawal.amount)} ${withdrawal.asset} requested. Confirm it from the email we sent you within the next minutes; then it waits for review.`,
    );
    loadLimit().catch(() => {});
    withdrawForm.amount.value = "";
    if (withdrawForm.otp_code) withdrawForm.otp_code.value = "";
    refresh();
  } catch (error) {
    showError("withdraw-error", error);
  } finally {
    button.disabled = false;
  }
});

document.getElementById("withdrawals").addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-cancel-withdrawal]");
  if (!button) return;
  hide("withdrawals-error");
  button.disabled = true;
  try {
    const withdrawal = await del(`/api/v1/wallets/withdrawals/${button.dataset.cancelWithdrawal}`);
    button.closest("tr").outerHTML = withdrawalRow(withdrawal);
    refresh();
    loadLimit().catch(() => {});
  } catch (error) {
    button.disabled = false;
    showError("withdrawals-error", error);
  }
});

// --- address book ---------------------------------------------------------------------------

const bookForm = document.getElementById("book-form");

function savedRow(a) {
  const usable = Date.parse(a.usable_from) <= Date.now() ? "yes" : `from ${dateTime(a.usable_from)}`;
  return `<tr data-address-id="${a.id}"><td>${escapeHtml(a.label)}</td><td>${escapeHtml(a.asset)}</td>
    <td><code>${escapeHtml(a.address)}</code></td><td class="muted">${escapeHtml(usable)}</td>
    <td class="actions"><button type="button" class="btn btn-small" data-delete-address="${a.id}">Delete</button></td></tr>`;
}

function renderBook() {
  const body = document.querySelector("#saved-addresses tbody");
  body.innerHTML = savedAddresses.length
    ? savedAddresses.map(savedRow).join("")
    : '<tr class="empty-row"><td colspan="5" class="empty">No saved addresses</td></tr>';
  renderDestinations();
}

bookForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  hide("book-add-error");
  const button = bookForm.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const body = {
      asset: bookForm.asset.value,
      label: bookForm.label.value.trim(),
      address: bookForm.address.value.trim(),
    };
    if (bookForm.otp_code) body.otp_code = bookForm.otp_code.value.trim();
    const saved = await post("/api/v1/wallets/addresses", body);
    savedAddresses = [...savedAddresses, saved];
    renderBook();
    notice(
      document.getElementById("book-add-status"),
      `Saved “${saved.label}”. It can be used from ${dateTime(saved.usable_from)}.`,
    );
    bookForm.reset();
  } catch (error) {
    showError("book-add-error", error);
  } finally {
    button.disabled = false;
  }
});

document.getElementById("saved-addresses").addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-delete-address]");
  if (!button) return;
  hide("book-error");
  button.disabled = true;
  try {
    await del(`/api/v1/wallets/addresses/${button.dataset.deleteAddress}`);
    savedAddresses = savedAddresses.filter((a) => String(a.id) !== button.dataset.deleteAddress);
    renderBook();
  } catch (error) {
    button.disabled = false;
    showError("book-error", error);
  }
});

const allowlistForm = document.getElementById("allowlist-form");
allowlistForm.allowlist_enabled.addEventListener("change", async () => {
  hide("allowlist-error");
  const box = allowlistForm.allowlist_enabled;
  const body = { allowlist_enabled: box.checked };
  if (allowlistForm.otp_code) body.otp_code = allowlistForm.otp_code.value.trim();
  try {
    const saved = await api("PUT", "/api/v1/wallets/withdrawal-settings", body);
    withdrawForm.dataset.allowlist = saved.allowlist_enabled ? "on" : "off";
    renderDestinations();
    notice(
      document.getElementById("allowlist-status"),
      saved.allowlist_enabled ? "Allow-list on: withdrawals go only to saved addresses." : "Allow-list off.",
    );
    if (allowlistForm.otp_code) allowlistForm.otp_code.value = "";
  } catch (error) {
    box.checked = !box.checked;
    showError("allowlist-error", error);
  }
});

// --- live -----------------------------------------------------------------------------------

const client = streams();
let ledgerTimer = 0;
client.subscribe({ channel: "balances" }, (event) => {
  if (assets[event.asset]) assets[event.asset].available = D.format(D.parse(event.available));
  renderBalance(event.asset, event.available, event.locked);
  renderTerms();
  // The event is the fast path; the API's answer a moment later is the record.
  ledgerTimer ||= setTimeout(() => {
    ledgerTimer = 0;
    refresh();
  }, 300);
});
// Read again whenever events may have been missed (ws.js onResync).
client.onResync({ channel: "balances" }, refresh);
renderTerms();
renderDestinations();
loadLimit().catch(() => {});
