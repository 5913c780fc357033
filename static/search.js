// The search box: a name part or an exact id, sent to the server as `q` once typing pauses.
const SEARCH_DELAY_MS = 300; // one request per pause in typing, not per key
const input = document.getElementById("search");
let timer = null;

/** Show `q` in the box (from the URL). */
export function drawSearch(q) {
  if (input.value.trim() !== q) input.value = q;
}

/** `onSearch(q)` after typing pauses, at once on Enter. */
export function wireSearch(onSearch) {
  const fire = () => {
    clearTimeout(timer);
    onSearch(input.value.trim());
  };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(fire, SEARCH_DELAY_MS);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") fire();
  });
}
