// A local copy of one market's order book, kept by the protocol of ARCHITECTURE §6: buffer
// updates until a snapshot arrives, drop those the snapshot covers, then apply each update
// whose range continues the last one; a gap means asking for a fresh snapshot.
import { normalize } from "./decimal.js";

export class LocalBook {
  constructor({ onChange, onGap }) {
    this.onChange = onChange;
    this.onGap = onGap;
    this.reset();
  }

  reset() {
    this.seq = null;
    this.bids = new Map();
    this.asks = new Map();
    this.pending = [];
  }

  handle(message) {
    if (message.type === "snapshot") this.snapshot(message);
    else if (message.type === "update") this.update(message);
  }

  snapshot(message) {
    this.bids = new Map(message.bids.map(([price, qty]) => [normalize(price), qty]));
    this.asks = new Map(message.asks.map(([price, qty]) => [normalize(price), qty]));
    this.seq = message.seq;
    const pending = this.pending;
    this.pending = [];
    for (const update of pending) if (!this.apply(update)) return;
    this.onChange();
  }

  update(message) {
    if (this.seq === null) {
      this.pending.push(message);
      return;
    }
    if (this.apply(message)) this.onChange();
  }

  apply(message) {
    if (message.seq <= this.seq) return true;
    if (message.first_seq > this.seq + 1) {
      this.reset();
      this.onGap();
      return false;
    }
    for (const [side, levels] of [
      [this.bids, message.bids],
      [this.asks, message.asks],
    ]) {
      for (const [price, qty] of levels) {
        if (Number(qty) === 0) side.delete(normalize(price));
        else side.set(normalize(price), qty);
      }
    }
    this.seq = message.seq;
    return true;
  }

  // Best first: highest bids, lowest asks.
  levels(side, count) {
    const map = side === "bids" ? this.bids : this.asks;
    const sign = side === "bids" ? -1 : 1;
    return [...map.entries()]
      .sort((a, b) => sign * (Number(a[0]) - Number(b[0])))
      .slice(0, count);
  }
}
