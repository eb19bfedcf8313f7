// The markets table, kept current by each market's ticker stream.
import { changeClass, group, signed } from "./format.js";
import { streams } from "./ws.js";

const client = streams();

function render(row, ticker) {
  const cell = (field) => row.querySelector(`[data-field="${field}"]`);
  const last = cell("last");
  const previous = last.dataset.raw;
  last.textContent = group(ticker.last);
  last.dataset.raw = ticker.last ?? "";
  if (previous && ticker.last && previous !== ticker.last) {
    const up = Number(ticker.last) > Number(previous);
    last.classList.remove("flash-up", "flash-down");
    void last.offsetWidth; // restart the highlight animation
    last.classList.add(up ? "flash-up" : "flash-down");
  }
  const change = cell("change_percent");
  change.textContent = signed(ticker.change_percent);
  change.className = `num ${changeClass(ticker.change_percent)}`;
  cell("high").textContent = group(ticker.high);
  cell("low").textContent = group(ticker.low);
  cell("volume").firstChild.textContent = group(ticker.volume) + " ";
  cell("quote_volume").firstChild.textContent = group(ticker.quote_volume) + " ";
}

for (const row of document.querySelectorAll("#markets-table tr[data-symbol]")) {
  const symbol = row.dataset.symbol;
  const last = row.querySelector('[data-field="last"]');
  last.dataset.raw = last.textContent.trim() === "—" ? "" : last.textContent.trim();
  for (const field of ["last", "high", "low"]) {
    const cell = row.querySelector(`[data-field="${field}"]`);
    cell.textContent = group(cell.textContent.trim() === "—" ? null : cell.textContent.trim());
  }
  client.subscribe({ channel: "ticker", symbol }, (ticker) => render(row, ticker));
  // The whole row opens the market (the link in the first cell stays the accessible one).
  row.addEventListener("click", (event) => {
    if (!event.target.closest("a")) location.href = row.querySelector("a").href;
  });
}
