// Loaded before tf.min.js. The regenerator runtime bundled in tfjs assigns the global
// `regeneratorRuntime`; in strict mode that assignment throws unless the global exists, and its
// fallback, Function("r", "regeneratorRuntime = r"), is JavaScript eval, which the page's
// Content-Security-Policy forbids (web/tfjs/serve.py). Declaring the global keeps it off that path.
var regeneratorRuntime; // eslint-disable-line no-unused-vars, no-var
