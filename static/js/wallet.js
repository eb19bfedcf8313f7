// The wallet page: live balances, the demo faucet, deposit addresses, withdrawals and the
// first page of the ledger, all through the REST API and the private balances stream.
import { ApiError, del, get, post } from "./api.js";
import * as D from "./decimal.js";
import { dateTime, escapeHtml, group, label, notice } from "./format.js";
import { streams } from "./ws.js";

const assets = Object.fromEntries(
  JSON.parse(document.getElementById("wallet-assets").textContent).map((row) => [row.asset, row]),
);
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

async function loadBalances() {
  const all = await get("/api/v1/account/balance");
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

function withdrawalRow(w) {
  const cancel = w.status === "requested"
    ? `<button type="button" class="btn btn-small" data-cancel-withdrawal="${w.id}">Cancel</button>`
    : "";
  return `<tr data-withdrawal-id="${w.id}"><td class="muted">${dateTime(w.created_at)}</td>
    <td class="num" title="to ${escapeHtml(w.address)}, fee ${escapeHtml(w.fee)}">${group(w.amount)} ${escapeHtml(w.asset)}</td>
    <td data-field="status">${escapeHtml(label(w.status))}</td><td class="actions">${cancel}</td></tr>`;
}

withdrawForm.asset.addEventListener("change", renderTerms);
withdrawForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  hide("withdraw-error");
  const button = withdrawForm.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const body = {
      asset: withdrawForm.asset.value,
      amount: withdrawForm.amount.value.trim(),
      address: withdrawForm.address.value.trim(),
    };
    // Present only with two-factor authentication on: a withdrawal then needs a code.
    if (withdrawForm.otp_code) body.otp_code = withdrawForm.otp_code.value.trim();
    const withdrawal = await post("/api/v1/wallets/withdrawals", body);
    document.querySelector("#withdrawals .empty-row")?.remove();
    document.querySelector("#withdrawals tbody").insertAdjacentHTML("afterbegin", withdrawalRow(withdrawal));
    notice(
      document.getElementById("withdraw-status"),
      `Withdrawal of ${group(withdrawal.amount)} ${withdrawal.asset} requested; it waits for review.`,
    );
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
  } catch (error) {
    button.disabled = false;
    showError("withdrawals-error", error);
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
client.onReconnect(refresh);
renderTerms();
