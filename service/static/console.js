// The plan builder: show the fields the chosen kind uses, and refresh the server-side preview
// (schedule + policy verdict) as the form changes. Without this script the Preview button posts
// the form and the whole page comes back with the same verdict.
(function () {
  "use strict";
  var form = document.getElementById("plan-form");
  if (!form) { return; }
  var result = document.getElementById("plan-result");
  var kind = document.getElementById("kind");
  var timer = null;
  var seq = 0;

  function showFields() {
    form.querySelectorAll("[data-kinds]").forEach(function (el) {
      var wanted = el.getAttribute("data-kinds").split(" ");
      el.hidden = wanted.indexOf(kind.value) < 0;
    });
  }

  function preview() {
    var mine = ++seq;
    var body = new URLSearchParams(new FormData(form));
    return fetch(form.getAttribute("data-preview"), {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" }
    }).then(function (response) {
      if (!response.ok) { throw new Error("preview failed: " + response.status); }
      return response.text();
    }).then(function (html) {
      if (mine === seq) { result.innerHTML = html; }
    }).catch(function () {
      form.querySelector("#preview-button").removeAttribute("data-js");
    });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(preview, 350);
  }

  kind.addEventListener("change", showFields);
  form.addEventListener("input", later);
  form.addEventListener("change", later);
  var button = document.getElementById("preview-button");
  button.setAttribute("data-js", "1");
  button.addEventListener("click", function (event) {
    if (!button.hasAttribute("data-js")) { return; }
    event.preventDefault();
    clearTimeout(timer);
    preview();
  });
  showFields();
})();
