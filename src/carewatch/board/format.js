// Formatting for the board: times in the service's time zone, minutes, and money from whole pence.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined) element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

let zone = "Europe/London";
export function setTimeZone(name) { zone = name || zone; }

const formats = new Map();
function format(options) {
  const key = zone + JSON.stringify(options);
  if (!formats.has(key)) formats.set(key, new Intl.DateTimeFormat("en-GB", { timeZone: zone, ...options }));
  return formats.get(key);
}

export function clockText(date) {
  return format({ weekday: "short", day: "numeric", month: "short", year: "numeric", hour: "2-digit",
    minute: "2-digit", second: "2-digit", timeZoneName: "short" }).format(date);
}
export function dateTime(value) {
  if (!value) return "";
  return format({ day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }).format(new Date(value));
}
export function time(value) {
  if (!value) return "";
  return format({ hour: "2-digit", minute: "2-digit" }).format(new Date(value));
}
export function dayText(value) {
  return format({ weekday: "long", day: "numeric", month: "long" }).format(new Date(value));
}

export function words(code) {
  const text = String(code || "").toLowerCase().replaceAll("_", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function minutes(value) {
  const total = Math.round(Math.abs(value));
  const sign = value < -0.5 ? "−" : "";
  const hours = Math.floor(total / 60);
  const rest = total % 60;
  if (hours === 0) return `${sign}${rest} min`;
  return rest === 0 ? `${sign}${hours} h` : `${sign}${hours} h ${rest} min`;
}

// Money stays in whole pence until it is printed: no floating point on the way.
export function pounds(pence) {
  const value = BigInt(Math.trunc(pence));
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const whole = (abs / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const fraction = (abs % 100n).toString().padStart(2, "0");
  return `${negative ? "−" : ""}£${whole}.${fraction}`;
}

export function percent(part, whole) {
  if (!whole) return "–";
  return `${Math.round((100 * part) / whole)}%`;
}
