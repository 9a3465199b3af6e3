// Numbers, sizes and times for people.

const number = new Intl.NumberFormat();

export function count(n) {
  return number.format(n);
}

export function plural(n, one, many) {
  return `${count(n)} ${n === 1 ? one : many}`;
}

/** Bytes, powers of 1000 (the server's filesize filter does the same). */
export function size(bytes) {
  let value = bytes;
  for (const unit of ["B", "kB", "MB", "GB"]) {
    if (value < 1000 || unit === "GB") {
      return unit === "B" || value >= 10 ? `${Math.round(value)} ${unit}` : `${value.toFixed(1)} ${unit}`;
    }
    value /= 1000;
  }
  return `${bytes} B`;
}

const timeOnly = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dayMonth = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const dayMonthYear = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric" });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

/** "just now", "5 min ago", "3 h ago", "yesterday", "4 days ago", then a date. */
export function relative(date, now = new Date()) {
  const seconds = Math.round((now - date) / 1000);
  if (seconds < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  const midnight = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  const days = Math.ceil((midnight - date) / 86400000);
  if (days <= 1) return "yesterday";
  if (days < 7) return `${days} days ago`;
  return date.getFullYear() === now.getFullYear() ? dayMonth.format(date) : dayMonthYear.format(date);
}

export function fullDate(date) {
  return full.format(date);
}

export function clock(date) {
  return timeOnly.format(date);
}
