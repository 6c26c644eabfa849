// The console's one script: live values over server-sent events, confirmations, copy buttons
// and a line marker in the YAML editor. No framework, nothing fetched from elsewhere.
"use strict";

// Live values: the page names its stream in <body data-live="...">; each message is
// {"fields": {"element id": {"text": "...", "state": "..."}}}.
function startLive() {
  const url = document.body.dataset.live;
  if (!url || !window.EventSource) return;
  const source = new EventSource(url);
  source.addEventListener("message", (event) => {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch (_) {
      return;
    }
    for (const [id, value] of Object.entries(data.fields || {})) {
      const el = document.getElementById(id);
      if (!el) continue;
      if (el.textContent !== value.text) el.textContent = value.text;
      if (value.state !== undefined) el.dataset.state = value.state;
    }
    const stamp = document.getElementById("live-stamp");
    if (stamp) stamp.textContent = "live";
  });
  source.addEventListener("error", () => {
    const stamp = document.getElementById("live-stamp");
    if (stamp) stamp.textContent = "reconnecting";
  });
}

// A button with data-reveal="id" shows the element with that id (an inline confirmation that
// says what will happen) and hides itself; data-hide="id" puts it back.
function wireConfirmations() {
  document.querySelectorAll("[data-reveal]").forEach((button) => {
    button.addEventListener("click", () => {
      const panel = document.getElementById(button.dataset.reveal);
      if (panel) panel.hidden = false;
      button.hidden = true;
    });
  });
  document.querySelectorAll("[data-hide]").forEach((button) => {
    button.addEventListener("click", () => {
      const panel = document.getElementById(button.dataset.hide);
      if (panel) panel.hidden = true;
      document
        .querySelectorAll(`[data-reveal="${button.dataset.hide}"]`)
        .forEach((b) => (b.hidden = false));
    });
  });
}

// A button with data-copy="id" copies that element's text.
function wireCopyButtons() {
  document.querySelectorAll("[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        button.textContent = "Copied";
      } catch (_) {
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = "Selected: press Ctrl+C";
      }
    });
  });
}

// The YAML editor: the line of the field a validation error names (data-error-line) is marked
// and the cursor put there; Tab inserts two spaces.
function wireEditor() {
  const editor = document.getElementById("document");
  if (!editor) return;
  const line = parseInt(editor.dataset.errorLine || "", 10);
  if (line > 0) {
    const lines = editor.value.split("\n");
    let offset = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
    editor.focus();
    editor.setSelectionRange(offset, offset + (lines[line - 1] || "").length);
  }
  editor.addEventListener("keydown", (event) => {
    if (event.key !== "Tab" || event.shiftKey) return;
    event.preventDefault();
    const start = editor.selectionStart;
    editor.setRangeText("  ", start, editor.selectionEnd, "end");
  });
}

document.addEventListener("DOMContentLoaded", () => {
  startLive();
  wireConfirmations();
  wireCopyButtons();
  wireEditor();
});
