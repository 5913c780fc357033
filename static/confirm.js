// An in-page confirmation (a modal <dialog>, not window.confirm): keyboard-operable, Escape says no.
const dialog = document.getElementById("confirm");
const title = document.getElementById("confirm-title");
const message = document.getElementById("confirm-message");
const extra = document.getElementById("confirm-extra");
const yesButton = document.getElementById("confirm-yes");
const noButton = document.getElementById("confirm-no");

/** Ask; resolves true for yes. `fields` are extra nodes (e.g. a select) shown in the dialog meanwhile. */
export function confirmInPage({ title: heading, message: text, yes = "OK", no = "Keep them", fields = [] }) {
  title.textContent = heading;
  message.textContent = text;
  yesButton.textContent = yes;
  noButton.textContent = no;
  extra.replaceChildren(...fields);
  dialog.returnValue = "";
  const opener = document.activeElement;
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        opener?.focus?.();
        resolve(dialog.returnValue === "ok");
      },
      { once: true },
    );
    dialog.showModal();
    noButton.focus(); // the safe answer first
  });
}
