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
// Split bill: the add-expense form shows only the chosen mode's fields, and each member's share while amounts are
// typed, computed by the server with the product's own arithmetic (POST .../preview). Without script every mode's
// fields show and "Show shares" does the same on the server.
(() => {
  const form = document.querySelector("form[data-split-preview]");
  if (!form) return;
  const target = document.getElementById("split-preview");
  const showMode = () => {
    const mode = form.querySelector("input[name=mode]:checked")?.value;
    for (const section of form.querySelectorAll("[data-mode-section]")) section.hidden = section.dataset.modeSection !== mode;
  };
  const element = (tag, className, text) => {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const render = (result) => {
    target.replaceChildren();
    if (result.ok) {
      const list = element("ul", "preview-shares");
      for (const share of result.shares) {
        const item = element("li");
        item.dataset.member = share.member;
        item.append(element("span", "", share.name), " ", element("strong", "money", share.amount));
        list.append(item);
      }
      target.append(list, element("p", "small muted", (form.dataset.totalText || "{0}").replace("{0}", result.total)));
    } else {
      const box = element("div", "problem");
      box.dataset.testid = "preview-problem";
      const title = element("p", "problem-title", result.problem.title + " ");
      title.append(element("code", "", result.problem.code));
      box.append(title);
      if (result.problem.detail) box.append(element("p", "problem-detail", result.problem.detail));
      target.append(box);
    }
  };
  let timer = 0, sequence = 0;
  const preview = async () => {
    if (!form.elements.amount.value.trim()) return;
    const mine = ++sequence;
    try {
      const response = await fetch(form.dataset.splitPreview, { method: "POST", body: new FormData(form), credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.ok && mine === sequence) render(await response.json());
    } catch { /* offline or leaving the page: the form still works */ }
  };
  const later = (ms) => { clearTimeout(timer); timer = setTimeout(preview, ms); };
  form.addEventListener("input", () => later(300));
  form.addEventListener("change", (event) => { if (event.target.name === "mode") showMode(); later(100); });
  showMode();
  later(0);
})();
// Work that takes a while (a statement being rendered or matched, a receipt being processed): a region marked
// data-poll-ms is fetched again until it no longer asks to be. Without script, reloading the page shows the same.
for (const region of document.querySelectorAll("[data-poll-ms][id]")) {
  let rounds = 0;
  const poll = async () => {
    if (++rounds > 300) return;
    try {
      const response = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById(region.id);
      const current = document.getElementById(region.id);
      if (!fresh || !current) return;
      current.replaceWith(document.importNode(fresh, true));
      if (fresh.dataset.pollMs) setTimeout(poll, Number(fresh.dataset.pollMs));
    } catch { /* offline: reloading the page shows the outcome */ }
  };
  setTimeout(poll, Number(region.dataset.pollMs));
}
