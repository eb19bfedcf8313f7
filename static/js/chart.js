// The candlestick and volume chart, drawn by TradingView's lightweight-charts (served from
// node_modules after `npm ci`). Without the library the rest of the page still works.

const COLORS = {
  background: "#0b0e11",
  text: "#848e9c",
  grid: "#1b2028",
  border: "#2b3139",
  up: "#0ecb81",
  down: "#f6465d",
};

export function createCandleChart(container, { pricePlaces, tickSize }) {
  const library = window.LightweightCharts;
  if (!library) {
    container.innerHTML =
      '<p class="chart-missing">The chart library is not installed here (run <code>npm ci</code>).</p>';
    return null;
  }
  const chart = library.createChart(container, {
    autoSize: true,
    layout: {
      background: { type: "solid", color: COLORS.background },
      textColor: COLORS.text,
      fontFamily: getComputedStyle(document.body).fontFamily,
    },
    grid: { vertLines: { color: COLORS.grid }, horzLines: { color: COLORS.grid } },
    rightPriceScale: { borderColor: COLORS.border },
    timeScale: { borderColor: COLORS.border, timeVisible: true, secondsVisible: false },
    crosshair: { mode: library.CrosshairMode.Normal },
  });
  const candles = chart.addSeries(library.CandlestickSeries, {
    upColor: COLORS.up,
    downColor: COLORS.down,
    wickUpColor: COLORS.up,
    wickDownColor: COLORS.down,
    borderVisible: false,
    priceFormat: { type: "price", precision: pricePlaces, minMove: Number(tickSize) },
  });
  candles.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.28 } });
  const volume = chart.addSeries(library.HistogramSeries, {
    priceFormat: { type: "volume" },
    priceScaleId: "",
    lastValueVisible: false,
    priceLineVisible: false,
  });
  volume.priceScale().applyOptions({ scaleMargins: { top: 0.78, bottom: 0 } });
  let lastTime = 0;

  const bar = (row) => ({
    time: Math.floor(row.open_time / 1000),
    open: Number(row.open),
    high: Number(row.high),
    low: Number(row.low),
    close: Number(row.close),
  });
  const volumeBar = (row) => ({
    time: Math.floor(row.open_time / 1000),
    value: Number(row.volume),
    color: Number(row.close) >= Number(row.open) ? "rgba(14,203,129,0.45)" : "rgba(246,70,93,0.45)",
  });

  return {
    setData(rows) {
      candles.setData(rows.map(bar));
      volume.setData(rows.map(volumeBar));
      lastTime = rows.length ? Math.floor(rows[rows.length - 1].open_time / 1000) : 0;
      chart.timeScale().scrollToRealTime();
    },
    update(row) {
      const time = Math.floor(row.open_time / 1000);
      // The library refuses bars older than its last one; a late message is stale anyway.
      if (time < lastTime) return;
      lastTime = time;
      candles.update(bar(row));
      volume.update(volumeBar(row));
    },
  };
}
