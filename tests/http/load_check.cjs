// Many streaming clients at once against a server with a bounded queue, through the official
// OpenAI SDK for Node: every request either streams to its end or is refused with 429 at once;
// nothing else. Prints one JSON line per round: {"accepted", "refused", "tokens", "seconds"}.
//   MMX_HTTP_BASE  http://127.0.0.1:P/v1 (model "tiny-a")
//   MMX_CLIENTS    clients per round (64)
//   MMX_ROUNDS     rounds (3)
//   MMX_TOKENS     tokens per stream (32)
'use strict';
const assert = require('node:assert/strict');
const OpenAI = require('openai');

const clients = Number(process.env.MMX_CLIENTS || 64);
const rounds = Number(process.env.MMX_ROUNDS || 3);
const tokens = Number(process.env.MMX_TOKENS || 32);
const api = new OpenAI({baseURL: process.env.MMX_HTTP_BASE, apiKey: 'none', maxRetries: 0, timeout: 120000});

async function one(i) {
  try {
    const stream = await api.completions.create(
        {model: 'tiny-a', prompt: `client ${i} says`, max_tokens: tokens, ignore_eos: true, stream: true,
         stream_options: {include_usage: true}});
    let finish = null, usage = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      if (chunk.choices.length && chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
    }
    assert.equal(finish, 'length', `client ${i}: the stream ended without its finish reason`);
    assert.equal(usage.completion_tokens, tokens, `client ${i}: ${usage.completion_tokens} tokens`);
    return 'accepted';
  } catch (e) {
    if (e instanceof OpenAI.RateLimitError) return 'refused';
    throw e;
  }
}

async function main() {
  for (let round = 0; round < rounds; ++round) {
    const start = process.hrtime.bigint();
    const outcomes = await Promise.all(Array.from({length: clients}, (_, i) => one(i)));
    const accepted = outcomes.filter((o) => o === 'accepted').length;
    console.log(JSON.stringify({round, accepted, refused: clients - accepted, tokens: accepted * tokens,
                                  seconds: Number(process.hrtime.bigint() - start) / 1e9}));
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
