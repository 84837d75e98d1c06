// Starts Swagger UI on /api/v1/docs. A file of its own, not an inline script: the
// Content-Security-Policy (web/__init__.py) allows scripts from this server's files only.
"use strict";

window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    // Never send the document to swagger.io's online validator (its badge is an outside image).
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
