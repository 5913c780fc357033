// Times as people read them: "12 s", "4 min 12 s", "in 5 min", "3 min ago".

/** A length of time in whole seconds: "12 s", "4 min 12 s", "2 h 3 min", "3 d 2 h". */
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return s % 60 ? `${minutes} min ${s % 60} s` : `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
  const days = Math.floor(hours / 24);
  return hours % 24 ? `${days} d ${hours % 24} h` : `${days} d`;
}

/** A wait until `iso`, coarser as it is longer: "12 s", "5 min", "2 h 5 min"; "now" once it is due. */
export function until(iso, now = Date.now()) {
  return roughly((Date.parse(iso) - now) / 1000);
}

/** A length of time, coarser as it is longer (see until). */
function roughly(seconds) {
  if (seconds < 0.5) return "now";
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return duration(Math.round(seconds / 60) * 60);
}

/** How long ago `ms` (a Date.now()) was: "just now", "3 s ago", "2 min ago". */
export function ago(ms, now = Date.now()) {
  const seconds = Math.round((now - ms) / 1000);
  if (seconds < 2) return "just now";
  if (seconds < 3600) return `${seconds < 60 ? seconds + " s" : Math.floor(seconds / 60) + " min"} ago`;
  return `${duration(Math.floor(seconds / 60) * 60)} ago`;
}

/** Seconds between two ISO times, the second defaulting to now. */
export function between(startIso, endIso, now = Date.now()) {
  const end = endIso ? Date.parse(endIso) : now;
  return (end - Date.parse(startIso)) / 1000;
}

/** A local date and time with seconds, for a detail's times. */
export function localTime(iso) {
  return new Date(iso).toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

/** A running job's pace (state.js `pace`) as read in a row: "40 %/min · 2 min left"; "—" when unknown. */
export function paceText(p) {
  if (!p) return "—";
  const rate = p.perMinute >= 10 ? Math.round(p.perMinute) : Number(p.perMinute.toFixed(1));
  const left = p.secondsLeft === null ? "" : ` · ${p.secondsLeft < 0.5 ? "done" : `${roughly(p.secondsLeft)} left`}`;
  return `${rate} %/min${left}`;
}
