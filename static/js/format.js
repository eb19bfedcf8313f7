// Display helpers shared by the pages.

export function escapeHtml(value) {
  return String(value ?? "").replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c],
  );
}

// "50000.5" → "50,000.5": thousands grouped, digits after the point untouched.
export function group(text) {
  if (text === null || text === undefined || text === "") return "—";
  const [whole, fraction] = String(text).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return fraction !== undefined ? `${grouped}.${fraction}` : grouped;
}

function pad(n) {
  return String(n).padStart(2, "0");
}

export function time(value) {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return "";
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function dateTime(value) {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time(d)}`;
}

export function label(text) {
  const words = String(text ?? "").replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function changeClass(percent) {
  if (percent === null || percent === undefined || percent === "") return "";
  return String(percent).startsWith("-") ? "down" : Number(percent) === 0 ? "" : "up";
}

export function signed(percent) {
  if (percent === null || percent === undefined || percent === "") return "—";
  const text = String(percent);
  return (text.startsWith("-") ? text : `+${text}`) + " %";
}

// A short message under a form, removed after a while (role=status for screen readers).
export function notice(element, text, kind = "ok", ms = 5000) {
  if (!element) return;
  element.textContent = text;
  element.dataset.kind = kind;
  element.hidden = false;
  clearTimeout(element._timer);
  if (ms) element._timer = setTimeout(() => (element.hidden = true), ms);
}
