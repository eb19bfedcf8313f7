// The trading page: chart, order book, trades and ticker from /ws/; the order form, open
// orders, history and fills through the REST API, refreshed by the private streams.
import { ApiError, del, get, newestRead, post } from "./api.js";
import { LocalBook } from "./book.js";
import { createCandleChart } from "./chart.js";
import * as D from "./decimal.js";
import { changeClass, dateTime, escapeHtml, group, label, notice, signed, time } from "./format.js";
import { streams } from "./ws.js";

const market = JSON.parse(document.getElementById("market-data").textContent);
const balances = JSON.parse(document.getElementById("balances-data").textContent);
const symbol = market.symbol;
const base = market.base_asset;
const quote = market.quote_asset;
const pricePlaces = D.places(market.tick_size);
const qtyPlaces = D.places(market.lot_size);
const orderForm = document.getElementById("order-form");
const authenticated = Boolean(orderForm);
const client = streams();
const LIVE = new Set(["new", "open", "partially_filled", "untriggered"]);
const BOOK_LEVELS = 14;
let currentSide = "buy";
let currentType = "limit";
let priceInput, stopInput, qtyInput; // set below when the order form is on the page
let stopLimitInput, trailingInput, icebergInput;
const TRADE_ROWS = 40;

const marketPath = encodeURIComponent(symbol);
document.getElementById("market-select").addEventListener("change", (event) => {
  location.href = event.target.value;
});

// --- ticker ---------------------------------------------------------------------------------

const tickerBox = document.getElementById("ticker");
let lastPrice = null;

// Values on the market's grid, whatever the publisher's formatting ("100" → "100.00").
function onGrid(text, digits) {
  const value = D.parse(text);
  return value ? D.format(value, digits) : null;
}

function renderTicker(message) {
  const ticker = {
    ...message,
    last: onGrid(message.last, pricePlaces),
    high: onGrid(message.high, pricePlaces),
    low: onGrid(message.low, pricePlaces),
    volume: onGrid(message.volume, qtyPlaces),
    quote_volume: onGrid(message.quote_volume, market.quote_precision),
  };
  const field = (name) => tickerBox.querySelector(`[data-field="${name}"]`);
  const last = field("last");
  if (ticker.last && lastPrice && ticker.last !== lastPrice) {
    last.className = `big ${Number(ticker.last) > Number(lastPrice) ? "up" : "down"}`;
  }
  lastPrice = ticker.last ?? lastPrice;
  last.textContent = group(ticker.last);
  const change = field("change_percent");
  change.textContent = signed(ticker.change_percent);
  change.className = changeClass(ticker.change_percent);
  field("high").textContent = group(ticker.high);
  field("low").textContent = group(ticker.low);
  field("volume").textContent = group(ticker.volume);
  field("quote_volume").textContent = group(ticker.quote_volume);
  if (ticker.last) document.title = `${group(ticker.last)} ${symbol} · Exchange`;
  renderTotal();
}

{
  const initial = {};
  for (const element of tickerBox.querySelectorAll("[data-field]")) {
    const text = element.textContent.trim();
    initial[element.dataset.field] = text === "—" ? null : text;
  }
  renderTicker(initial);
}
client.subscribe({ channel: "ticker", symbol }, renderTicker);

// --- order book -----------------------------------------------------------------------------

const asksBody = document.getElementById("book-asks");
const bidsBody = document.getElementById("book-bids");
const bookParams = { channel: "orderbook", symbol };
const book = new LocalBook({
  onChange: () => scheduleBookRender(),
  onGap: () => client.resubscribe(bookParams),
});
let bookFrame = 0;

function scheduleBookRender() {
  if (!bookFrame) bookFrame = requestAnimationFrame(renderBook);
}

function bookRows(levels, side, maxTotal) {
  let running = D.parse("0");
  const rows = levels.map(([price, qty]) => {
    running = { ...addDecimal(running, D.parse(qty)) };
    return { price, qty, total: running };
  });
  const max = maxTotal || 1;
  return rows.map(({ price, qty, total }) => {
    const depth = Math.min(100, (Number(D.format(total)) / max) * 100).toFixed(1);
    const shown = D.format(D.parse(price), pricePlaces);
    return `<tr class="level ${side}" data-price="${escapeHtml(shown)}" style="--depth:${depth}%" tabindex="0" title="Use this price">
      <td class="price">${group(shown)}</td><td class="num">${group(D.format(D.parse(qty), qtyPlaces))}</td><td class="num muted">${group(D.format(total, qtyPlaces))}</td></tr>`;
  });
}

function addDecimal(a, b) {
  const e = Math.max(a.e, b.e);
  return { n: a.n * 10n ** BigInt(e - a.e) + b.n * 10n ** BigInt(e - b.e), e };
}

function sideTotal(levels) {
  return levels.reduce((sum, [, qty]) => sum + Number(qty), 0);
}

function renderBook() {
  bookFrame = 0;
  const asks = book.levels("asks", BOOK_LEVELS);
  const bids = book.levels("bids", BOOK_LEVELS);
  const maxTotal = Math.max(sideTotal(asks), sideTotal(bids));
  // Asks read downwards towards the spread: the best (lowest) ask sits just above it.
  asksBody.innerHTML = bookRows(asks, "ask", maxTotal).reverse().join("");
  bidsBody.innerHTML = bookRows(bids, "bid", maxTotal).join("");
  const mid = document.getElementById("book-mid");
  const spread = document.getElementById("book-spread");
  mid.textContent = group(lastPrice);
  mid.className = `mid ${tickerBox.querySelector('[data-field="last"]').className.replace("big", "")}`;
  if (asks.length && bids.length) {
    const gap = Number(asks[0][0]) - Number(bids[0][0]);
    spread.textContent = `spread ${group(gap.toFixed(pricePlaces))}`;
  } else {
    spread.textContent = asks.length || bids.length ? "" : "The book is empty";
  }
}

function takePrice(row) {
  if (!authenticated || !row) return;
  if (currentType === "market") setType("limit");
  priceInput.value = row.dataset.price;
  renderTotal();
  priceInput.focus();
}

for (const body of [asksBody, bidsBody]) {
  body.addEventListener("click", (event) => takePrice(event.target.closest("tr.level")));
  body.addEventListener("keydown", (event) => {
    if (event.key === "Enter") takePrice(event.target.closest("tr.level"));
  });
}
client.subscribe(bookParams, (message) => book.handle(message));
renderBook();

// --- recent trades --------------------------------------------------------------------------

const tradesBody = document.querySelector("#recent-trades tbody");
const seenTrades = new Set();
let publicTrades = [];

function renderTrades() {
  if (!publicTrades.length) {
    tradesBody.innerHTML = '<tr><td colspan="3" class="empty">No trades yet</td></tr>';
    return;
  }
  tradesBody.innerHTML = publicTrades
    .map(
      (trade) => `<tr data-trade-id="${trade.id}"><td class="${trade.taker_side === "sell" ? "down" : "up"}">${group(D.format(D.parse(trade.price), pricePlaces))}</td>
      <td class="num">${group(D.format(D.parse(trade.quantity), qtyPlaces))}</td><td class="num muted">${time(trade.time)}</td></tr>`,
    )
    .join("");
}

function addTrades(trades) {
  for (const trade of trades) {
    if (seenTrades.has(trade.id)) continue;
    seenTrades.add(trade.id);
    publicTrades.push(trade);
  }
  publicTrades.sort((a, b) => b.id - a.id);
  publicTrades = publicTrades.slice(0, TRADE_ROWS);
  renderTrades();
}

async function loadTrades() {
  try {
    const rows = await get(`/api/v1/market/${marketPath}/trades?limit=${TRADE_ROWS}`);
    addTrades(
      rows.map((row) => ({
        id: row.id,
        price: row.price,
        quantity: row.quantity,
        taker_side: row.taker_side ?? row.side,
        time: row.time ?? row.created_at ?? row.timestamp,
      })),
    );
  } catch {
    renderTrades();
  }
}

client.subscribe({ channel: "trades", symbol }, (trade) => addTrades([trade]));
// Read now, and again once the subscription is confirmed and whenever trades may have been
// missed: a trade made between the first read and the confirmation would never show.
client.onResync({ channel: "trades", symbol }, loadTrades);
loadTrades();

// --- chart ----------------------------------------------------------------------------------

const chartBox = document.getElementById("chart");
let chart = null;
let interval = "1m";
let candleParams = null;
const onCandle = (candle) => chart?.update(candle);

// setData replaces the whole series, so an older read answering last would undo a newer
// one (the page reads at load and again once subscribed): the newest read wins.
const candlesRead = newestRead();

async function loadCandles() {
  const newest = candlesRead();
  const asked = interval;
  try {
    const rows = await get(`/api/v1/market/${marketPath}/candles?interval=${asked}&limit=500`);
    if (newest() && asked === interval) chart?.setData(rows);
  } catch (error) {
    if (newest()) {
      chartBox.dataset.error = error instanceof ApiError ? error.message : "Candles unavailable";
    }
  }
}

function switchInterval(next) {
  if (candleParams) {
    client.unsubscribe(candleParams, onCandle);
    client.offResync(candleParams, loadCandles);
  }
  interval = next;
  for (const button of document.querySelectorAll("#interval-switch button")) {
    button.setAttribute("aria-pressed", String(button.dataset.interval === next));
  }
  candleParams = { channel: "candles", symbol, interval };
  client.subscribe(candleParams, onCandle);
  client.onResync(candleParams, loadCandles); // read again once subscribed, as trades
  loadCandles();
}

document.getElementById("interval-switch").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-interval]");
  if (button && button.dataset.interval !== interval) switchInterval(button.dataset.interval);
});

function startChart() {
  chart = createCandleChart(chartBox, { pricePlaces, tickSize: market.tick_size });
  switchInterval(interval);
}
// The library loads with `defer`, so it is there once the document has been parsed.
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", startChart);
else startChart();

// --- the order form -------------------------------------------------------------------------


function available(asset) {
  return balances[asset] ?? "0";
}

function renderAvailable() {
  if (!authenticated) return;
  const asset = currentSide === "buy" ? quote : base;
  const precision = asset === base ? market.base_precision : market.quote_precision;
  document.getElementById("order-available").textContent = group(
    D.format(D.parse(available(asset)), precision),
  );
  document.getElementById("order-available-asset").textContent = asset;
}

// Price × quantity; a market order is estimated at the last price.
function renderTotal() {
  if (!qtyInput) return;
  const output = document.getElementById("order-total");
  const qty = D.parse(qtyInput.value);
  let price = D.parse(priceInput.value);
  if (currentType === "market" || (currentType === "stop" && !price)) {
    price = D.parse(currentType === "stop" ? stopInput.value : lastPrice);
  }
  const estimate = currentType !== "limit" && !(currentType === "stop" && D.parse(priceInput.value));
  output.textContent =
    D.isPositive(qty) && D.isPositive(price)
      ? (estimate ? "≈ " : "") + group(D.format(D.mul(price, qty), market.quote_precision))
      : "—";
}

function setSide(side) {
  currentSide = side;
  for (const button of orderForm.querySelectorAll("[data-side]")) {
    button.setAttribute("aria-pressed", String(button.dataset.side === side));
  }
  const submit = document.getElementById("order-submit");
  submit.textContent = `${side === "buy" ? "Buy" : "Sell"} ${base}`;
  submit.className = `btn btn-block ${side === "buy" ? "btn-buy" : "btn-sell"}`;
  renderAvailable();
}

function setType(type) {
  currentType = type;
  for (const button of orderForm.querySelectorAll("[data-type]")) {
    button.setAttribute("aria-pressed", String(button.dataset.type === type));
  }
  for (const field of orderForm.querySelectorAll(".field[data-for]")) {
    field.hidden = !field.dataset.for.split(" ").includes(type);
  }
  priceInput.placeholder = type === "stop" ? "Empty: market when triggered" : "";
  document.getElementById("order-price-label").textContent =
    type === "oco" ? "Limit price" : "Price";
  renderTotal();
}

function fillPercent(percent) {
  const share = D.parse(String(percent / 100));
  const lot = D.parse(market.lot_size);
  let qty;
  if (currentSide === "sell") {
    qty = D.floorToStep(D.mul(D.parse(available(base)), share), lot);
  } else {
    const price = D.parse(priceInput.value) || D.parse(stopInput.value) || D.parse(lastPrice);
    if (!D.isPositive(price)) {
      showOrderError("Enter a price first.");
      return;
    }
    qty = D.divFloorToStep(D.mul(D.parse(available(quote)), share), price, lot);
  }
  qtyInput.value = qty && D.isPositive(qty) ? D.format(qty, qtyPlaces) : "";
  renderTotal();
}

function showOrderError(text) {
  const box = document.getElementById("order-error");
  box.textContent = text;
  box.hidden = false;
}

function orderBody() {
  const body = { symbol, side: currentSide };
  const price = priceInput.value.trim();
  const quantity = qtyInput.value.trim();
  const stop = stopInput.value.trim();
  if (quantity) body.quantity = quantity;
  if (currentType === "limit") {
    body.order_type = "limit";
    if (price) body.price = price;
    body.time_in_force = document.getElementById("order-tif").value;
    body.post_only = document.getElementById("order-post-only").checked;
    const iceberg = icebergInput.value.trim();
    if (iceberg) body.iceberg_quantity = iceberg;
  } else if (currentType === "market") {
    body.order_type = "market";
  } else if (currentType === "oco") {
    // POST /api/v1/orders/oco: a post-only limit leg and a stop (or stop-limit) leg.
    if (price) body.limit_price = price;
    if (stop) body.stop_price = stop;
    const stopLimit = stopLimitInput.value.trim();
    if (stopLimit) body.stop_limit_price = stopLimit;
  } else {
    body.order_type = price ? "stop_limit" : "stop";
    if (price) body.price = price;
    if (stop) body.stop_price = stop;
  }
  const trailing = trailingInput.value.trim();
  if (trailing && (currentType === "stop" || currentType === "oco")) {
    body.trailing_delta = /^[0-9]+$/.test(trailing) ? Number(trailing) : trailing;
  }
  return body;
}

async function submitOrder(event) {
  event.preventDefault();
  const submit = document.getElementById("order-submit");
  document.getElementById("order-error").hidden = true;
  document.getElementById("order-status").hidden = true;
  submit.disabled = true;
  try {
    if (currentType === "oco") {
      const list = await post("/api/v1/orders/oco", orderBody());
      for (const order of list.orders) orders.set(order.id, order);
      renderOrders();
      notice(
        document.getElementById("order-status"),
        `${label(list.orders[0].side)} OCO #${list.id} placed.`,
      );
    } else {
      const order = await post("/api/v1/orders/", orderBody());
      orders.set(order.id, order);
      renderOrders();
      notice(
        document.getElementById("order-status"),
        `${label(order.side)} order #${order.id} placed.`,
      );
    }
    qtyInput.value = "";
    renderTotal();
  } catch (error) {
    showOrderError(error instanceof ApiError ? error.describe() : "The order could not be sent.");
  } finally {
    submit.disabled = false;
  }
}

// --- my orders and fills --------------------------------------------------------------------

const orders = new Map();
let fills = [];

function orderPrice(order) {
  if (order.price) return group(order.price);
  if (order.order_type === "market" || order.order_type === "stop") return "Market";
  return "—";
}

function typeLabel(order) {
  const name = { limit: "Limit", market: "Market", stop: "Stop", stop_limit: "Stop limit" }[
    order.order_type
  ];
  let text = order.stop_price ? `${name} @ ${group(order.stop_price)}` : name || label(order.order_type);
  if (order.trailing_delta) text += ` · trail ${order.trailing_delta} bps`;
  if (order.iceberg_quantity) text += ` · iceberg ${group(order.iceberg_quantity)}`;
  if (order.order_list_id) text += ` · OCO #${order.order_list_id}`;
  return text;
}

// The open order's actions: amend (a smaller quantity, inline) and cancel.
function orderActions(order) {
  if (order.amending) {
    return `<input class="amend-input" data-amend-input="${order.id}" inputmode="decimal" value="${escapeHtml(order.quantity)}"
      aria-label="New quantity of order ${order.id}"> <button type="button" class="btn btn-small" data-amend-save="${order.id}">Save</button>
      <button type="button" class="btn btn-small" data-amend-close="${order.id}">Back</button>`;
  }
  const amend = order.quantity
    ? `<button type="button" class="btn btn-small" data-amend="${order.id}" ${order.cancelling ? "disabled" : ""}
      aria-label="Amend quantity of order ${order.id}">Amend</button> `
    : "";
  return `${amend}<button type="button" class="btn btn-small" data-cancel="${order.id}" ${order.cancelling ? "disabled" : ""}
          aria-label="Cancel order ${order.id}">${order.cancelling ? "Cancelling…" : "Cancel"}</button>`;
}

function sideCell(side) {
  return `<td class="${side === "buy" ? "up" : "down"}">${label(side)}</td>`;
}

function renderOrders() {
  const all = [...orders.values()].filter((order) => order.symbol === symbol);
  all.sort((a, b) => b.id - a.id);
  const open = all.filter((order) => LIVE.has(order.status));
  const done = all.filter((order) => !LIVE.has(order.status)).slice(0, 50);
  document.getElementById("open-count").textContent = open.length ? `(${open.length})` : "";
  document.getElementById("cancel-all").hidden = open.length < 2;
  document.querySelector("#open-orders tbody").innerHTML = open.length
    ? open
        .map(
          (order) => `<tr data-order-id="${order.id}">
        <td class="muted">${dateTime(order.created_at)}</td>${sideCell(order.side)}<td>${escapeHtml(typeLabel(order))}</td>
        <td class="num">${orderPrice(order)}</td><td class="num">${group(order.quantity)}</td>
        <td class="num">${group(order.filled_quantity)}</td><td class="hide-narrow">${escapeHtml(label(order.status))}</td>
        <td class="actions">${orderActions(order)}</td></tr>`,
        )
        .join("")
    : '<tr><td colspan="8" class="empty">No open orders</td></tr>';
  document.querySelector("#order-history tbody").innerHTML = done.length
    ? done
        .map(
          (order) => `<tr data-order-id="${order.id}">
        <td class="muted">${dateTime(order.created_at)}</td>${sideCell(order.side)}<td>${escapeHtml(typeLabel(order))}</td>
        <td class="num">${orderPrice(order)}</td><td class="num">${group(order.quantity ?? "")}</td>
        <td class="num">${group(order.filled_quantity)}</td><td class="num hide-narrow">${group(order.average_price)}</td>
        <td title="${escapeHtml(order.reason || "")}">${escapeHtml(label(order.status))}</td></tr>`,
        )
        .join("")
    : '<tr><td colspan="8" class="empty">No finished orders yet</td></tr>';
}

function renderFills() {
  document.querySelector("#my-trades tbody").innerHTML = fills.length
    ? fills
        .map(
          (fill) => `<tr data-trade-id="${fill.id}">
        <td class="muted">${dateTime(fill.created_at)}</td>${sideCell(fill.side)}
        <td class="num">${group(fill.price)}</td><td class="num">${group(fill.quantity)}</td>
        <td class="num hide-narrow">${group(fill.quote_quantity)}</td><td class="num">${group(fill.fee)} <span class="muted">${escapeHtml(fill.fee_asset)}</span></td>
        <td class="hide-narrow muted">${fill.is_maker ? "Maker" : "Taker"}</td></tr>`,
        )
        .join("")
    : '<tr><td colspan="7" class="empty">No trades yet</td></tr>';
}

// A list read over REST can be older than an event that arrived while it was on its way
// (the read ran before the change committed): the newest read wins, and one that saw events
// arrive meanwhile is followed by another, so the page ends on the latest state.
const ordersRead = newestRead();
let ordersLoading = false;
let ordersEventsMeanwhile = false;

async function loadOrders() {
  const newest = ordersRead();
  ordersLoading = true;
  ordersEventsMeanwhile = false;
  try {
    const page = await get(`/api/v1/orders/?symbol=${marketPath}&page_size=100`);
    const live = await get(`/api/v1/orders/?symbol=${marketPath}&status=live&page_size=500`);
    if (!newest()) return; // a newer read is on its way
    orders.clear();
    for (const order of [...page.results, ...live.results]) orders.set(order.id, order);
    renderOrders();
  } catch (error) {
    if (newest()) showListError(error);
  } finally {
    if (newest()) {
      ordersLoading = false;
      if (ordersEventsMeanwhile) refreshSoon({ withFills: false });
    }
  }
}

const fillsRead = newestRead();

async function loadFills() {
  const newest = fillsRead();
  try {
    const page = await get(`/api/v1/trades/?symbol=${marketPath}&page_size=50`);
    if (!newest()) return; // the newest read wins, as for orders
    fills = page.results;
    renderFills();
  } catch (error) {
    if (newest()) showListError(error);
  }
}

// Every balance event schedules a read a moment later (onBalanceEvent), so only an older read
// arriving after a newer one could leave the page behind: the newest read wins.
const balancesRead = newestRead();

async function loadBalances() {
  const newest = balancesRead();
  try {
    const all = await get("/api/v1/account/balance");
    if (!newest()) return;
    for (const asset of [base, quote]) if (all[asset]) balances[asset] = all[asset].available;
    renderAvailable();
  } catch (error) {
    if (newest()) showListError(error);
  }
}

function showListError(error) {
  const box = document.getElementById("orders-error");
  box.textContent = error instanceof ApiError ? error.describe() : "Could not load your orders.";
  box.hidden = false;
}

async function cancelOrder(id) {
  const order = orders.get(id);
  if (order) order.cancelling = true;
  renderOrders();
  try {
    await del(`/api/v1/orders/${id}`);
  } catch (error) {
    if (order) order.cancelling = false;
    showListError(error);
    loadOrders();
  }
}

async function amendOrder(id) {
  const order = orders.get(id);
  const input = document.querySelector(`[data-amend-input="${id}"]`);
  if (!order || !input) return;
  try {
    await post(`/api/v1/orders/${id}/amend`, { quantity: input.value.trim() });
    order.amending = false;
    renderOrders();
    notice(document.getElementById("order-status"), `Order #${id}: amend sent.`);
  } catch (error) {
    showListError(error);
  }
}

// Several events arrive per batch; one reload after them is enough.
let refreshTimer = 0;
let fillsPending = false;
function refreshSoon({ withFills }) {
  fillsPending = fillsPending || withFills;
  refreshTimer ||= setTimeout(() => {
    refreshTimer = 0;
    loadOrders();
    if (fillsPending) loadFills();
    fillsPending = false;
  }, 150);
}

function onOrderEvent(event) {
  if (event.symbol !== symbol) return;
  if (ordersLoading) ordersEventsMeanwhile = true;
  const known = orders.get(event.id);
  const filledBefore = known ? known.filled_quantity : null;
  if (known) {
    // The event carries the state that changes; the rest (times, stop price) is kept.
    orders.set(event.id, { ...known, ...event, cancelling: false, amending: false });
    renderOrders();
  }
  const filled = filledBefore !== event.filled_quantity && Number(event.filled_quantity) > 0;
  if (!known || filled || !LIVE.has(event.status)) refreshSoon({ withFills: filled });
}

let balanceTimer = 0;
function onBalanceEvent(event) {
  if (event.asset !== base && event.asset !== quote) return;
  balances[event.asset] = D.format(D.parse(event.available));
  renderAvailable();
  // The event is the fast path; the API's answer a moment later is the record.
  balanceTimer ||= setTimeout(() => {
    balanceTimer = 0;
    loadBalances();
  }, 250);
}

function selectTab(tab) {
  for (const other of document.querySelectorAll('[role="tab"]')) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
  }
}

if (authenticated) {
  priceInput = document.getElementById("order-price");
  stopInput = document.getElementById("order-stop-price");
  qtyInput = document.getElementById("order-quantity");
  stopLimitInput = document.getElementById("order-stop-limit-price");
  trailingInput = document.getElementById("order-trailing-delta");
  icebergInput = document.getElementById("order-iceberg");
  orderForm.addEventListener("click", (event) => {
    const button = event.target.closest("button[type=button]");
    if (!button) return;
    if (button.dataset.side) setSide(button.dataset.side);
    if (button.dataset.type) setType(button.dataset.type);
    if (button.dataset.percent) fillPercent(Number(button.dataset.percent));
  });
  for (const input of [priceInput, stopInput, qtyInput]) {
    input.addEventListener("input", () => {
      document.getElementById("order-error").hidden = true;
      renderTotal();
    });
  }
  orderForm.addEventListener("submit", submitOrder);
  document.querySelector("#open-orders tbody").addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.cancel) cancelOrder(Number(button.dataset.cancel));
    if (button.dataset.amendSave) amendOrder(Number(button.dataset.amendSave));
    const toggle = button.dataset.amend || button.dataset.amendClose;
    if (toggle) {
      const order = orders.get(Number(toggle));
      if (order) order.amending = Boolean(button.dataset.amend);
      renderOrders();
      document.querySelector(`[data-amend-input="${toggle}"]`)?.focus();
    }
  });
  document.getElementById("cancel-all").addEventListener("click", async () => {
    try {
      await del(`/api/v1/orders/?symbol=${marketPath}`);
      for (const order of orders.values()) if (LIVE.has(order.status)) order.cancelling = true;
      renderOrders();
    } catch (error) {
      showListError(error);
    }
  });
  document.querySelector('[role="tablist"]').addEventListener("click", (event) => {
    const tab = event.target.closest('[role="tab"]');
    if (tab) selectTab(tab);
  });
  setSide("buy");
  setType("limit");
  client.subscribe({ channel: "orders" }, onOrderEvent);
  client.subscribe({ channel: "balances" }, onBalanceEvent);
  // Read again whenever events may have been missed (ws.js onResync).
  client.onResync({ channel: "orders" }, () => {
    loadOrders();
    loadFills();
  });
  client.onResync({ channel: "balances" }, loadBalances);
  loadOrders();
  loadFills();
}
