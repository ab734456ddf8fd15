// Verifies one request an outbound action made with the npm
// `standardwebhooks` package (the Standard Webhooks reference library for
// JavaScript), as an application receiving our calls would:
//   node swverify.js BODY_FILE HEADERS_JSON_FILE SECRET_FILE [raw]
// HEADERS_JSON_FILE is an object of the request's headers; SECRET_FILE
// holds the secret as the sender's secret_file does: a whsec_ key (trimmed),
// or with `raw` the key's bytes as they are.  Prints "verified" and exits 0,
// or prints "refused: WHY" and exits 1.
"use strict";
const fs = require("fs");
const { Webhook } = require("standardwebhooks");

const [bodyFile, headersFile, secretFile, format] = process.argv.slice(2);
try {
	const body = fs.readFileSync(bodyFile);
	const headers = JSON.parse(fs.readFileSync(headersFile, "utf8"));
	const wh = format === "raw"
		? new Webhook(fs.readFileSync(secretFile), { format: "raw" })
		: new Webhook(fs.readFileSync(secretFile, "utf8").trim());
	wh.verify(body, headers);
	console.log("verified");
} catch (e) {
	console.log("refused: " + e.message);
	process.exit(1);
}
