// API keys on the profile page: list, create (the secret is shown once) and revoke,
// through GET/POST /api/v1/api-keys and DELETE /api/v1/api-keys/{id}.
import { ApiError, del, get, post } from "./api.js";
import { dateTime, escapeHtml, label } from "./format.js";

const form = document.getElementById("api-key-form");
const table = document.querySelector("#api-keys-table tbody");
const errorBox = document.getElementById("api-key-error");
let keys = [];

function showError(error) {
  errorBox.textContent =
    error instanceof ApiError ? error.describe() : "Something went wrong. Please try again.";
  errorBox.hidden = false;
}

function render() {
  table.innerHTML = keys.length
    ? keys
        .map(
          (key) => `<tr data-key-id="${key.id}">
        <td>${escapeHtml(key.label)}</td><td class="mono">${escapeHtml(key.key)}</td>
        <td>${key.permissions.map((p) => escapeHtml(label(p))).join(", ")}</td>
        <td class="hide-narrow mono small">${key.ip_allowlist.length ? key.ip_allowlist.map(escapeHtml).join(", ") : '<span class="muted">any</span>'}</td>
        <td class="hide-narrow muted">${key.last_used_at ? dateTime(key.last_used_at) : "never"}</td>
        <td class="actions"><button type="button" class="btn btn-small" data-revoke="${key.id}" aria-label="Revoke ${escapeHtml(key.label)}">Revoke</button></td></tr>`,
        )
        .join("")
    : '<tr><td colspan="6" class="empty">No API keys yet</td></tr>';
}

async function load() {
  try {
    const page = await get("/api/v1/api-keys");
    keys = page.results;
    render();
  } catch (error) {
    table.innerHTML = `<tr><td colspan="6" class="empty">${escapeHtml(
      error instanceof ApiError ? error.message : "API keys could not be loaded.",
    )}</td></tr>`;
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  errorBox.hidden = true;
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const body = {
      label: form.label.value.trim(),
      permissions: [...form.querySelectorAll('input[name="permissions"]:checked')].map(
        (input) => input.value,
      ),
      ip_allowlist: form.ip_allowlist.value
        .split(/[\s,]+/)
        .map((ip) => ip.trim())
        .filter(Boolean),
    };
    // Present only with two-factor authentication on: creating a key then needs a code.
    if (form.otp_code) body.otp_code = form.otp_code.value.trim();
    const created = await post("/api/v1/api-keys", body);
    const secretBox = document.getElementById("api-key-secret");
    secretBox.querySelector('[data-field="key"]').textContent = created.key;
    secretBox.querySelector('[data-field="secret"]').textContent = created.secret;
    secretBox.hidden = false;
    delete created.secret;
    keys.unshift(created);
    render();
    form.reset();
  } catch (error) {
    showError(error);
  } finally {
    button.disabled = false;
  }
});

table.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-revoke]");
  if (!button) return;
  const id = Number(button.dataset.revoke);
  const key = keys.find((k) => k.id === id);
  if (!window.confirm(`Revoke the key "${key ? key.label : id}"? Bots using it stop working.`)) {
    return;
  }
  button.disabled = true;
  try {
    await del(`/api/v1/api-keys/${id}`);
    keys = keys.filter((k) => k.id !== id);
    document.getElementById("api-key-secret").hidden = true;
    render();
  } catch (error) {
    button.disabled = false;
    showError(error);
  }
});

load();
