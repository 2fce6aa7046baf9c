// A mock of the agents' APIs for tests/integration/real-agents.sh: one HTTPS
// server (certificate of the test CA) answering as api.anthropic.com
// (Messages API), api.openai.com (Responses API) and
// generativelanguage.googleapis.com (Gemini API). Every request is logged as
// one JSON line with whether it carried the expected key (never the key).
//
//   node agent-api-mock.js CERT KEY LOG PORT
//   environment: MOCK_KEY_LIST  the keys a request may carry (blank-separated)
//                MOCK_ANSWER  the text the model "answers" (default MOCK-ANSWER)
"use strict";
const https = require("https");
const fs = require("fs");
const [cert, key, logFile, port] = process.argv.slice(2);
const expected = (process.env.MOCK_KEY_LIST || "").split(/\s+/).filter(Boolean);
const answer = process.env.MOCK_ANSWER || "MOCK-ANSWER";

function keyOf(req) {
  const h = req.headers;
  if (h["x-api-key"]) return h["x-api-key"];
  if (h["x-goog-api-key"]) return h["x-goog-api-key"];
  const a = h["authorization"] || "";
  if (a.startsWith("Bearer ")) return a.slice(7);
  const u = new URL(req.url, "https://x");
  return u.searchParams.get("key") || "";
}

function sse(res, events) {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  for (const [name, data] of events)
    res.write((name ? `event: ${name}\n` : "") + `data: ${JSON.stringify(data)}\n\n`);
  res.end();
}

function anthropic(req, res, body) {
  const model = body.model || "claude-mock";
  const usage = { input_tokens: 10, output_tokens: 5, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
  const msg = { id: "msg_mock", type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage };
  if (!body.stream) {
    res.writeHead(200, { "content-type": "application/json" });
    return res.end(JSON.stringify({ ...msg, content: [{ type: "text", text: answer }], stop_reason: "end_turn" }));
  }
  sse(res, [
    ["message_start", { type: "message_start", message: msg }],
    ["content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }],
    ["content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: answer } }],
    ["content_block_stop", { type: "content_block_stop", index: 0 }],
    ["message_delta", { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 5 } }],
    ["message_stop", { type: "message_stop" }],
  ]);
}

function openai(req, res, body) {
  const item = { type: "message", role: "assistant", id: "msg_mock", status: "completed",
                 content: [{ type: "output_text", text: answer, annotations: [] }] };
  const response = { id: "resp_mock", object: "response", model: body.model || "gpt-mock", status: "completed", output: [item],
                     usage: { input_tokens: 10, input_tokens_details: { cached_tokens: 0 }, output_tokens: 5,
                              output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 15 } };
  sse(res, [
    ["response.created", { type: "response.created", response: { ...response, status: "in_progress", output: [] } }],
    ["response.output_item.added", { type: "response.output_item.added", output_index: 0, item: { ...item, status: "in_progress", content: [] } }],
    ["response.output_text.delta", { type: "response.output_text.delta", item_id: "msg_mock", output_index: 0, content_index: 0, delta: answer }],
    ["response.output_item.done", { type: "response.output_item.done", output_index: 0, item }],
    ["response.completed", { type: "response.completed", response }],
  ]);
}

function gemini(req, res, body) {
  const chunk = { candidates: [{ content: { role: "model", parts: [{ text: answer }] }, finishReason: "STOP", index: 0 }],
                  usageMetadata: { promptTokenCount: 10, candidatesTokenCount: 5, totalTokenCount: 15 } };
  if (req.url.includes("alt=sse")) return sse(res, [[null, chunk]]);
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify(req.url.includes("stream") ? [chunk] : chunk));
}

https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (req, res) => {
  let data = "";
  req.on("data", (c) => { data += c; });
  req.on("end", () => {
    let body = {};
    try { body = data ? JSON.parse(data) : {}; } catch (e) { body = {}; }
    const host = (req.headers.host || "").replace(/:.*/, "");
    const keyOk = expected.includes(keyOf(req));
    fs.appendFileSync(logFile, JSON.stringify({ host, method: req.method, path: req.url.replace(/key=[^&]*/, "key=..."),
                                                key_ok: keyOk, stream: !!body.stream, messages: Array.isArray(body.messages) ? body.messages.length : (Array.isArray(body.input) ? body.input.length : (Array.isArray(body.contents) ? body.contents.length : 0)),
                                                text: JSON.stringify(body).includes("MOCK-ANSWER") ? "has-earlier-answer" : "", ua: req.headers["user-agent"] || "" }) + "\n");
    // the connectivity check (claude: HEAD /api/hello) carries no key, as at the real API
    if (!keyOk && !req.url.startsWith("/api/hello")) {
      res.writeHead(401, { "content-type": "application/json" });
      return res.end(JSON.stringify({ type: "error", error: { type: "authentication_error", message: "mock: wrong or missing key" } }));
    }
    const p = req.url.split("?")[0];
    if (req.method === "POST" && p.endsWith("/v1/messages")) return anthropic(req, res, body);
    if (req.method === "POST" && p.endsWith("/responses")) return openai(req, res, body);
    if (req.method === "POST" && /:(stream)?[gG]enerateContent$/.test(p)) return gemini(req, res, body);
    if (req.method === "POST" && p.endsWith(":countTokens")) { res.writeHead(200, { "content-type": "application/json" }); return res.end('{"totalTokens":10}'); }
    if (p.endsWith("/count_tokens")) { res.writeHead(200, { "content-type": "application/json" }); return res.end('{"input_tokens":10}'); }
    if (p === "/api/hello") { res.writeHead(200, { "content-type": "application/json" }); return res.end("{}"); }
    if (p.endsWith("/models")) { res.writeHead(200, { "content-type": "application/json" }); return res.end('{"data":[],"models":[]}'); }
    res.writeHead(404, { "content-type": "application/json" });
    res.end('{"error":{"message":"mock: not found"}}');
  });
}).listen(Number(port), "0.0.0.0", () => fs.appendFileSync(logFile, JSON.stringify({ listening: Number(port) }) + "\n"));
