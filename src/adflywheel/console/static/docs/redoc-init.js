// Starts ReDoc on /redoc from the package's own copy (no CDN, no inline script).
// ReDoc 3 is an ES module and sends usage traces to Redocly (otel.cloud.redocly.com) unless
// told not to: disableTelemetry keeps the docs from calling anywhere (air-gapped, private).
import { init } from "/static/vendor/redoc/redoc.standalone.js";

const root = document.getElementById("redoc");
init(root.getAttribute("data-openapi-url"), { disableTelemetry: true }, root);
