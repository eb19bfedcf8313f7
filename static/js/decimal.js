// Exact decimal arithmetic on the API's decimal strings (BigInt based): previews of totals
// and amounts must not drift the way binary floats do.

const PATTERN = /^\s*(-)?(\d*)(?:\.(\d*))?\s*$/;

export function parse(text) {
  if (text === null || text === undefined) return null;
  const match = PATTERN.exec(String(text));
  if (!match || (!match[2] && !match[3])) return null;
  const fraction = match[3] || "";
  const digits = BigInt((match[2] || "0") + fraction);
  return { n: match[1] ? -digits : digits, e: fraction.length };
}

function scaleTo(value, e) {
  return value.n * 10n ** BigInt(e - value.e);
}

export function mul(a, b) {
  return { n: a.n * b.n, e: a.e + b.e };
}

export function cmp(a, b) {
  const e = Math.max(a.e, b.e);
  const x = scaleTo(a, e);
  const y = scaleTo(b, e);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function isPositive(value) {
  return value !== null && value.n > 0n;
}

// a / b, rounded down to a multiple of step (both positive).
export function divFloorToStep(a, b, step) {
  if (!isPositive(b) || !isPositive(step)) return null;
  const e = Math.max(a.e, b.e, step.e);
  // (a / b) / step = a / (b * step), in units of step
  const units = (scaleTo(a, e) * 10n ** BigInt(e)) / (scaleTo(b, e) * scaleTo(step, e));
  return { n: units * step.n, e: step.e };
}

export function floorToStep(value, step) {
  return divFloorToStep(value, { n: 1n, e: 0 }, step);
}

// Fixed notation with at least minPlaces decimals (rounding down past maxPlaces).
export function format(value, minPlaces = 0, maxPlaces = 18) {
  if (value === null) return "";
  let n = value.n;
  let e = value.e;
  if (e > maxPlaces) {
    n = n / 10n ** BigInt(e - maxPlaces);
    e = maxPlaces;
  }
  const negative = n < 0n;
  let digits = (negative ? -n : n).toString().padStart(e + 1, "0");
  let whole = e ? digits.slice(0, -e) : digits;
  let fraction = e ? digits.slice(-e) : "";
  fraction = fraction.replace(/0+$/, "");
  if (fraction.length < minPlaces) fraction = fraction.padEnd(minPlaces, "0");
  return (negative ? "-" : "") + whole + (fraction ? "." + fraction : "");
}

export function places(text) {
  const value = parse(text);
  if (!value) return 0;
  return format(value).split(".")[1]?.length || 0;
}

// The same number written the same way ("50000.10" and "50000.1"): a map key.
export function normalize(text) {
  const value = parse(text);
  return value ? format(value) : String(text);
}
