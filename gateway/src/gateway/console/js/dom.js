// Small DOM helpers. Text always goes in as text nodes, never as HTML, so names, filenames
// and API messages cannot inject markup.

import { describeError } from "./messages.js";

/** `el("button", {type: "button", dataset: {id}, onclick}, "Label")` */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "className") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.flat().filter((child) => child !== null && child !== undefined));
  return node;
}

/** Offer `blob` as a file called `filename`, as the browser's own download. */
export function saveFile(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function byId(id) {
  return document.getElementById(id);
}

/**
 * Handle `form`'s submissions in the page: the browser neither sends the form nor reloads;
 * `handle(event)` runs instead. It reads `event.currentTarget` before its first `await`: the
 * browser clears it once the event has been dispatched.
 */
export function onSubmit(form, handle) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    handle(event);
  });
}

/**
 * Put `rows` in the table body `body`; with none, one row across its `columns` columns that
 * says `emptyText`, so an empty table says why rather than showing a bare header.
 */
export function showRows(body, rows, columns, emptyText) {
  body.replaceChildren(...rows);
  if (rows.length === 0) {
    body.append(el("tr", {}, el("td", { colspan: columns, className: "empty" }, emptyText)));
  }
}

export function formatDate(value) {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime())
    ? String(value)
    : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

/** Show an error in the page's alert region, with the request id for support. */
export function showError(error) {
  const box = byId("error");
  const text = byId("error-text");
  const reference = byId("error-reference");
  text.textContent = describeError(error);
  reference.textContent = error?.requestId ? `Reference: ${error.requestId}` : "";
  box.hidden = false;
  box.dataset.code = error?.code ?? "";
}

export function clearError() {
  byId("error").hidden = true;
}

/** A short confirmation in the polite status region. */
export function showStatus(message) {
  const box = byId("status");
  box.textContent = message;
  box.hidden = !message;
}

/** Run `action`, showing its failure (if any) instead of throwing; disables `button` meanwhile. */
export async function guarded(action, button = null) {
  clearError();
  if (button) button.disabled = true;
  try {
    return await action();
  } catch (error) {
    if (error?.name !== "AbortError") showError(error);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/**
 * Send `form` with `action`, as `guarded` runs it: its submit button is disabled until the
 * answer comes, so a second click cannot send the form twice.
 */
export function submitting(form, action) {
  return guarded(action, form.querySelector("button[type=submit]"));
}

/** Put `text` on the clipboard; throws where the browser refuses. */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain-HTTP pages have no async clipboard: select a hidden textarea and copy that.
  const area = el("textarea", { className: "visually-hidden", readonly: true });
  area.value = text;
  document.body.append(area);
  area.select();
  const copied = document.execCommand("copy");
  area.remove();
  if (!copied) throw new Error("copy refused");
}

/**
 * A secret that is shown once (new API key or webhook signing secret), with a copy button
 * and a button that hides it for good.
 */
export function secretPanel({ title, explanation, secret, onDone }) {
  const code = el("code", { className: "secret-value", "data-testid": "secret-value" }, secret);
  const feedback = el("span", { className: "copy-feedback", role: "status" });
  const copyButton = el(
    "button",
    {
      type: "button",
      className: "secondary",
      "data-testid": "copy-secret",
      onclick: async () => {
        try {
          await copyText(secret);
          feedback.textContent = "Copied.";
        } catch {
          feedback.textContent = "Copy failed: select the text and copy it yourself.";
        }
      },
    },
    "Copy",
  );
  const panel = el(
    "div",
    { className: "secret-panel", "data-testid": "secret-panel", tabindex: "-1" },
    el("h3", {}, title),
    el("p", {}, explanation),
    el("div", { className: "secret-row" }, code, copyButton),
    feedback,
    el(
      "button",
      {
        type: "button",
        onclick: () => {
          panel.remove();
          onDone?.();
        },
      },
      "I've saved it",
    ),
  );
  return panel;
}
