// The create form: params drawn from the chosen job type's JSON schema, its priority preset to the
// type's default; the server's complaints shown next to the fields they name.
import { api, urls } from "./api.js";
import { setTypes, state } from "./state.js";

const DEFAULT_TYPE = "demo.web_agent";
const form = document.getElementById("create-form");
const typeSelect = document.getElementById("job-type");
const nameInput = document.getElementById("job-name");
const prioritySelect = document.getElementById("job-priority");
const paramsBox = document.getElementById("params");
const formError = document.getElementById("form-error");

export async function loadTypes() {
  try {
    setTypes((await api(urls.types)).job_types);
  } catch (err) {
    showFormError(err.message);
    return;
  }
  typeSelect.replaceChildren(...state.types.map(typeOption));
  if (state.types.some((t) => t.name === DEFAULT_TYPE)) typeSelect.value = DEFAULT_TYPE;
  chooseType();
}

/** A type was chosen: its params and its default priority. */
function chooseType() {
  drawParams();
  prioritySelect.value = selectedType()?.priority || "normal";
}

function selectedType() {
  return state.types.find((t) => t.name === typeSelect.value);
}

function typeOption(type) {
  const option = document.createElement("option");
  option.value = type.name;
  option.textContent = type.description ? `${type.name} — ${type.description}` : type.name;
  return option;
}

function drawParams() {
  const properties = selectedType()?.params_schema.properties || {};
  const labels = Object.entries(properties).map(([name, spec]) => {
    const label = document.createElement("label");
    label.append(document.createTextNode(`${name} `), paramInput(name, spec));
    return label;
  });
  paramsBox.replaceChildren(paramsBox.querySelector("legend") || document.createElement("legend"), ...labels);
}

function paramInput(name, spec) {
  const input = document.createElement("input");
  input.name = name;
  input.dataset.kind = spec.type;
  if (spec.type === "boolean") {
    input.type = "checkbox";
    input.checked = Boolean(spec.default);
    return input;
  }
  if (spec.type === "integer" || spec.type === "number") {
    input.type = "number";
    input.step = spec.type === "integer" ? "1" : "any";
    if (spec.minimum !== undefined) input.min = spec.minimum;
    if (spec.maximum !== undefined) input.max = spec.maximum;
  } else {
    input.type = "text";
  }
  if (spec.default !== undefined) input.value = spec.default;
  return input;
}

function readParams() {
  const params = {};
  for (const input of paramsBox.querySelectorAll("input")) {
    if (input.dataset.kind === "boolean") params[input.name] = input.checked;
    else if (input.value === "") continue; // left empty: the schema's default applies
    else if (input.dataset.kind === "integer") params[input.name] = parseInt(input.value, 10);
    else if (input.dataset.kind === "number") params[input.name] = parseFloat(input.value);
    else params[input.name] = input.value;
  }
  return params;
}

async function submitForm(event) {
  event.preventDefault();
  clearFormErrors();
  const payload = {
    type: typeSelect.value,
    name: nameInput.value,
    priority: prioritySelect.value,
    params: readParams(),
  };
  try {
    await api(urls.jobs, { method: "POST", body: JSON.stringify(payload) });
    nameInput.value = "";
  } catch (err) {
    showServerErrors(err);
  }
}

/** Each message in `details` goes next to the field it names; the rest, with the summary, above the button. */
function showServerErrors(err) {
  const unplaced = [];
  for (const [path, message] of fieldMessages(err.details || {})) {
    const field = fieldFor(path);
    if (field) markField(field, message);
    else unplaced.push(`${path.join(".")}: ${message}`);
  }
  showFormError([err.message, ...unplaced].join("\n"));
}

function fieldMessages(details, path = []) {
  // marshmallow nests messages by field ({params: {steps: ["..."]}}), each a list of strings.
  return Object.entries(details).flatMap(([key, value]) =>
    value && typeof value === "object" && !Array.isArray(value)
      ? fieldMessages(value, [...path, key])
      : [[[...path, key], [].concat(value).map((m) => (typeof m === "string" ? m : JSON.stringify(m))).join(" ")]],
  );
}

function fieldFor(path) {
  const [top, name, ...rest] = path;
  if (path.length === 1 && top === "name") return nameInput;
  if (path.length === 1 && top === "type") return typeSelect;
  if (path.length === 1 && top === "priority") return prioritySelect;
  if (top !== "params" || !name || rest.length) return null;
  return [...paramsBox.querySelectorAll("input")].find((input) => input.name === name) || null;
}

function markField(field, message) {
  const note = document.createElement("span");
  note.className = "field-error error";
  note.id = `${field.id || `param-${field.name}`}-error`;
  note.textContent = message;
  field.after(note);
  field.setAttribute("aria-invalid", "true");
  field.setAttribute("aria-describedby", note.id);
}

function clearFormErrors() {
  formError.hidden = true;
  formError.textContent = "";
  form.querySelectorAll(".field-error").forEach((note) => note.remove());
  for (const field of form.querySelectorAll("[aria-invalid]")) {
    field.removeAttribute("aria-invalid");
    field.removeAttribute("aria-describedby");
  }
}

function showFormError(message) {
  formError.textContent = message;
  formError.hidden = false;
}

export function wireForm() {
  form.addEventListener("submit", submitForm);
  typeSelect.addEventListener("change", chooseType);
}
