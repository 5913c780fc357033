// The create form: params drawn from the chosen job type's JSON schema (limits shown, defaults filled), its
// priority, attempts and backoff preset to the type's defaults, an optional delay; the browser's and the
// server's complaints shown next to the fields they name.
import { announce, api, post, urls } from "./api.js";
import { until } from "./format.js";
import { setTypes, state } from "./state.js";

const DEFAULT_TYPE = "demo.web_agent";
const $ = (id) => document.getElementById(id);
const form = $("create-form");
const typeSelect = $("job-type");
const typeDescription = $("job-type-description");
const nameInput = $("job-name");
const prioritySelect = $("job-priority");
const paramsBox = $("params");
const delayInput = $("job-delay");
const delayUnit = $("job-delay-unit");
const attemptsInput = $("job-max-attempts");
const backoff = {
  type: $("job-backoff-type"),
  delay_seconds: $("job-backoff-delay"),
  max_delay_seconds: $("job-backoff-max"),
  jitter: $("job-backoff-jitter"),
};
const retriesSummary = $("retries-summary");
const dependsInput = $("job-depends-on");
const allowFailure = $("job-allow-failure");
// "Repeat": the same type, name, params and options, saved as a schedule (PUT /api/schedules/<id>) instead
const repeat = {
  on: $("schedule-on"),
  id: $("schedule-id"),
  cron: $("schedule-cron"),
  every_seconds: $("schedule-every"),
  timezone: $("schedule-timezone"),
};
const repeatSummary = $("repeat-summary");
const submitButton = $("create-submit");
const formError = $("form-error");

export async function loadTypes() {
  try {
    setTypes((await api(urls.types)).job_types);
  } catch (err) {
    showFormError(err.message);
    return;
  }
  typeSelect.replaceChildren(...state.types.map((t) => new Option(t.name, t.name)));
  if (state.types.some((t) => t.name === DEFAULT_TYPE)) typeSelect.value = DEFAULT_TYPE;
  chooseType();
}

function selectedType() {
  return state.types.find((t) => t.name === typeSelect.value);
}

/** A type was chosen: its description, its params, and its defaults for priority, attempts and backoff. */
function chooseType() {
  const type = selectedType();
  clearFormErrors();
  typeDescription.textContent = type?.description || "";
  drawParams(type?.params_schema?.properties || {}, type?.params_schema?.required || []);
  prioritySelect.value = type?.priority || "normal";
  attemptsInput.value = type?.max_attempts ?? 1;
  const defaults = type?.backoff || {};
  backoff.type.value = defaults.type || "exponential";
  backoff.delay_seconds.value = defaults.delay_seconds ?? 1;
  backoff.max_delay_seconds.value = defaults.max_delay_seconds ?? 3600;
  backoff.jitter.checked = Boolean(defaults.jitter);
  summarizeRetries();
}

function summarizeRetries() {
  const n = Number(attemptsInput.value) || 1;
  retriesSummary.textContent =
    n > 1 ? `(${n}, ${backoff.type.value} from ${backoff.delay_seconds.value} s)` : "(1: no retries)";
}

function drawParams(properties, required) {
  const fields = Object.entries(properties).map(([name, spec]) => paramField(name, spec, required.includes(name)));
  paramsBox.replaceChildren(paramsBox.querySelector("legend"), ...fields);
  paramsBox.hidden = fields.length === 0;
}

/** One param's label, input (number with limits and step, checkbox, select for an enum, JSON for a list or an
 * object, text) and hint; a param without a default is required. */
function paramField(name, spec, required) {
  const wrap = document.createElement("div");
  wrap.className = spec.type === "boolean" ? "field check" : "field";
  const id = `param-${name}`;
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = spec.title || name;
  const input = paramInput(name, spec);
  input.id = id;
  if (required && spec.type !== "boolean") input.required = true;
  const hint = document.createElement("small");
  hint.className = "hint";
  hint.id = `${id}-hint`;
  hint.textContent = limits(spec);
  if (hint.textContent) input.setAttribute("aria-describedby", hint.id);
  if (spec.type === "boolean") wrap.append(input, label);
  else wrap.append(label, input);
  if (hint.textContent) wrap.append(hint);
  return wrap;
}

function paramInput(name, spec) {
  if (Array.isArray(spec.enum)) {
    const select = document.createElement("select");
    select.name = name;
    select.dataset.kind = "enum";
    for (const value of spec.enum) select.add(new Option(String(value), JSON.stringify(value)));
    if (spec.default !== undefined) select.value = JSON.stringify(spec.default);
    return select;
  }
  if (spec.type === "array" || spec.type === "object" || spec.type === undefined) return jsonInput(name, spec);
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
    input.inputMode = spec.type === "integer" ? "numeric" : "decimal";
    input.step = spec.multipleOf ?? (spec.type === "integer" ? "1" : "any");
    if (spec.minimum !== undefined) input.min = spec.minimum;
    if (spec.maximum !== undefined) input.max = spec.maximum;
  } else {
    input.type = "text";
    if (spec.maxLength !== undefined) input.maxLength = spec.maxLength;
    if (spec.minLength) input.minLength = spec.minLength;
    if (spec.pattern) input.pattern = spec.pattern;
  }
  if (spec.default !== undefined && spec.default !== null) input.value = spec.default;
  return input;
}

/** A list, an object or any JSON value, typed as JSON; the browser's check refuses what does not parse. */
function jsonInput(name, spec) {
  const input = document.createElement("textarea");
  input.name = name;
  input.rows = 2;
  input.dataset.kind = "json";
  input.placeholder = spec.type === "array" ? '["a", "b"]' : spec.type === "object" ? '{"key": "value"}' : "JSON";
  if (spec.default !== undefined && spec.default !== null) input.value = JSON.stringify(spec.default);
  input.addEventListener("input", () => input.setCustomValidity(parsesAsJson(input.value) ? "" : "Enter JSON."));
  return input;
}

function parsesAsJson(text) {
  if (text.trim() === "") return true;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** "1–1000 · default 10" */
function limits(spec) {
  const parts = [];
  const { minimum: min, maximum: max } = spec;
  if (min !== undefined && max !== undefined) parts.push(`${min}–${max}`);
  else if (min !== undefined) parts.push(`≥ ${min}`);
  else if (max !== undefined) parts.push(`≤ ${max}`);
  if (spec.maxLength !== undefined) parts.push(`up to ${spec.maxLength} characters`);
  if (spec.default !== undefined && spec.type !== "boolean") parts.push(`default ${JSON.stringify(spec.default)}`);
  if (spec.description) parts.push(spec.description);
  return parts.join(" · ");
}

function readParams() {
  const params = {};
  for (const input of paramsBox.querySelectorAll("input, select, textarea")) {
    const kind = input.dataset.kind;
    if (kind === "boolean") params[input.name] = input.checked;
    else if (kind === "enum") params[input.name] = JSON.parse(input.value);
    else if (input.value.trim() === "") continue; // left empty: the schema's default applies
    else if (kind === "json") params[input.name] = JSON.parse(input.value);
    else if (kind === "integer") params[input.name] = Number(input.value);
    else if (kind === "number") params[input.name] = Number(input.value);
    else params[input.name] = input.value;
  }
  return params;
}

function payload() {
  const body = { type: typeSelect.value, name: nameInput.value, priority: prioritySelect.value, params: readParams() };
  if (delayInput.value !== "") body.delay_seconds = Number(delayInput.value) * Number(delayUnit.value);
  const attempts = Number(attemptsInput.value);
  if (attemptsInput.value !== "") body.max_attempts = attempts;
  if (attempts > 1) {
    body.backoff = {
      type: backoff.type.value,
      delay_seconds: Number(backoff.delay_seconds.value || 0),
      max_delay_seconds: Number(backoff.max_delay_seconds.value || 0),
      jitter: backoff.jitter.checked,
    };
  }
  const dependsOn = dependsInput.value.split(/[\s,]+/).filter(Boolean);
  if (dependsOn.length) body.depends_on = dependsOn;
  if (allowFailure.checked) body.allow_failure = true;
  return body;
}

/** The form as a schedule's PUT body: the job's fields but its start and its dependencies (a tick's job has
 * none), and the cadence. */
function schedulePayload() {
  const { delay_seconds: _delay, depends_on: _depends, allow_failure: _allow, ...body } = payload();
  if (body.name === "") delete body.name; // the schedule's id names its jobs
  if (repeat.cron.value.trim() !== "") body.cron = repeat.cron.value.trim();
  if (repeat.every_seconds.value !== "") body.every_seconds = Number(repeat.every_seconds.value);
  body.timezone = repeat.timezone.value.trim() || "UTC";
  return body;
}

/** Repeat on or off: the schedule's fields are asked for, the name, the start and the dependencies are not. */
function toggleRepeat() {
  const on = repeat.on.checked;
  repeat.id.required = on;
  nameInput.required = !on;
  delayInput.disabled = on;
  dependsInput.disabled = on;
  allowFailure.disabled = on;
  if (on && !repeat.timezone.value) repeat.timezone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  repeatSummary.textContent = on ? "(on a schedule)" : "(once)";
  submitButton.textContent = on ? "Save schedule" : "Create job";
}

async function saveSchedule() {
  const url = `${urls.schedules}/${encodeURIComponent(repeat.id.value)}`;
  try {
    const { schedule } = await api(url, { method: "PUT", body: JSON.stringify(schedulePayload()) });
    const next = schedule.paused ? "paused" : `next run in ${until(schedule.next_run_at)}`;
    announce(`Saved schedule “${schedule.id}”: ${next}.`);
  } catch (err) {
    showServerErrors(err);
  }
}

async function submitForm(event) {
  event.preventDefault();
  clearFormErrors();
  if (!checkFields()) return;
  if (repeat.on.checked) {
    await saveSchedule();
    return;
  }
  const body = payload();
  try {
    const { job } = await post(urls.jobs, body);
    nameInput.value = "";
    delayInput.value = "";
    dependsInput.value = "";
    announce(`Created “${job.name}”${job.scheduled_for ? ", starting later" : ""}.`);
  } catch (err) {
    showServerErrors(err);
  }
}

/** The browser's own checks (required, min, max, step), shown our way; false when one fails. */
function checkFields() {
  const invalid = [...form.querySelectorAll("input, select, textarea")].filter((field) => !field.checkValidity());
  for (const field of invalid) markField(field, field.validationMessage);
  if (invalid.length) {
    invalid[0].closest("details")?.setAttribute("open", "");
    invalid[0].focus();
    showFormError("Fix the fields marked above.");
  }
  return invalid.length === 0;
}

/** Each message in `details` goes next to the field it names; the rest, with the summary, above the button. */
function showServerErrors(err) {
  const unplaced = [];
  let first = null;
  for (const [path, message] of fieldMessages(err.details || {})) {
    const field = fieldFor(path);
    if (field) {
      markField(field, message);
      first ??= field;
    } else unplaced.push(`${path.join(".")}: ${message}`);
  }
  first?.closest("details")?.setAttribute("open", "");
  first?.focus();
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
  const [top, name] = path;
  const single = {
    name: nameInput,
    type: typeSelect,
    priority: prioritySelect,
    delay_seconds: delayInput,
    run_at: delayInput,
    max_attempts: attemptsInput,
    depends_on: dependsInput,
    allow_failure: allowFailure,
    id: repeat.id,
    cron: repeat.cron,
    every_seconds: repeat.every_seconds,
    timezone: repeat.timezone,
  };
  if (path.length === 1 || top === "depends_on") return single[top] || null; // an id of the list is the list's
  if (top === "backoff" && path.length === 2) return backoff[name] || null;
  if (top !== "params" || !name) return null; // an item of a list param is that param's too
  return [...paramsBox.querySelectorAll("input, select, textarea")].find((input) => input.name === name) || null;
}

function markField(field, message) {
  const note = document.createElement("span");
  note.className = "field-error error";
  note.id = `${field.id}-error`;
  note.textContent = message;
  (field.closest(".with-unit") || field).after(note);
  field.setAttribute("aria-invalid", "true");
  field.dataset.describedby = field.getAttribute("aria-describedby") || "";
  field.setAttribute("aria-describedby", `${note.id} ${field.dataset.describedby}`.trim());
}

function clearFormErrors() {
  formError.hidden = true;
  formError.textContent = "";
  form.querySelectorAll(".field-error").forEach((note) => note.remove());
  for (const field of form.querySelectorAll("[aria-invalid]")) {
    field.removeAttribute("aria-invalid");
    const before = field.dataset.describedby;
    if (before) field.setAttribute("aria-describedby", before);
    else field.removeAttribute("aria-describedby");
    delete field.dataset.describedby;
  }
}

function showFormError(message) {
  formError.textContent = message;
  formError.hidden = false;
}

export function wireForm() {
  form.addEventListener("submit", submitForm);
  typeSelect.addEventListener("change", chooseType);
  repeat.on.addEventListener("change", toggleRepeat);
  for (const field of [attemptsInput, backoff.type, backoff.delay_seconds]) {
    field.addEventListener("change", summarizeRetries);
  }
}
