// The list's rows live in blocks of about BLOCK_ROWS, each its own <tbody>: CSS `content-visibility: auto`
// on the blocks lets the browser skip whole blocks off screen. On every row it would track a thousand
// elements at each frame (measured: bench/dashboard.py); on blocks of 10, a hundred, and a block in view
// lays out few rows beyond the screen's. The server draws the list's first page in the same blocks.
import { limits } from "./api.js";

const BLOCK_ROWS = limits.block_rows;
const table = document.getElementById("jobs");

function newBlock() {
  const block = document.createElement("tbody");
  block.setAttribute("role", "rowgroup");
  return block;
}

function lastBlock() {
  const blocks = table.tBodies;
  const last = blocks[blocks.length - 1];
  if (last && last.rows.length < BLOCK_ROWS) return last;
  return table.appendChild(newBlock());
}

/** Forget every row. */
export function clearRows() {
  for (const block of [...table.tBodies]) block.remove();
}

/** Put rows after every other, filling blocks in turn. */
export function appendRows(trs) {
  let block = lastBlock();
  for (const tr of trs) {
    if (block.rows.length >= BLOCK_ROWS) block = table.appendChild(newBlock());
    block.append(tr);
  }
}

/** Put a row before `next` (a row), or after every other; a block grown to twice its size splits. */
export function insertRow(tr, next) {
  if (!next) {
    lastBlock().append(tr);
    return;
  }
  const block = next.parentNode;
  block.insertBefore(tr, next);
  if (block.rows.length >= 2 * BLOCK_ROWS) {
    const half = newBlock();
    half.append(...[...block.rows].slice(BLOCK_ROWS));
    block.after(half);
  }
}

export function removeRow(tr) {
  const block = tr.parentNode;
  tr.remove();
  if (block && block.rows.length === 0) block.remove();
}

/** The rows of the blocks within `margin` px of the viewport. Only the blocks' own boxes are measured (a
 * binary search for the first, then a walk): asking for a row's box in a block the browser skips would
 * make it lay that block out. */
export function rowsNearScreen(margin) {
  const blocks = table.tBodies;
  const top = -margin;
  const bottom = window.innerHeight + margin;
  let lo = 0;
  let hi = blocks.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (blocks[mid].getBoundingClientRect().bottom < top) lo = mid + 1;
    else hi = mid;
  }
  const rows = [];
  for (let i = lo; i < blocks.length && blocks[i].getBoundingClientRect().top <= bottom; i++) {
    rows.push(...blocks[i].rows);
  }
  return rows;
}
