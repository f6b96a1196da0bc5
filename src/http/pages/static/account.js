// The account page: a preview of the chosen picture before it is uploaded.
(function () {
  "use strict";
  var input = document.getElementById("avatar"), preview = document.getElementById("avatar-preview");
  if (!input || !preview || !window.FileReader) return;
  input.addEventListener("change", function () {
    var file = input.files && input.files[0];
    if (!file) { preview.hidden = true; return; }
    var reader = new FileReader();
    reader.onload = function () { preview.src = reader.result; preview.hidden = false; };
    reader.readAsDataURL(file);
  });
})();
