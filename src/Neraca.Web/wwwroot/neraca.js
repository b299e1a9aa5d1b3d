// Progressive enhancement only: every page works without this file.
"use strict";
document.documentElement.classList.add("js");
// Filters and the language switch apply on change; without script their submit buttons do it.
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-autosubmit]");
  if (select && select.form) select.form.requestSubmit();
});
// "/" jumps to the lookup field of a page that has one (unless typing in a field already).
document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const active = document.activeElement;
  if (active && (active.tagName === "INPUT" || active.tagName === "SELECT" || active.tagName === "TEXTAREA")) return;
  const field = document.querySelector("[data-focus-key='/']");
  if (field) { event.preventDefault(); field.focus(); field.select(); }
});
// A form submitted once shows it is working and cannot be sent twice by a double click.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.method !== "post") return;
  if (form.dataset.submitted) { event.preventDefault(); return; }
  form.dataset.submitted = "1";
  for (const button of form.querySelectorAll("button[type=submit]")) button.setAttribute("aria-busy", "true");
});
