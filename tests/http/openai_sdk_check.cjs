// The official OpenAI SDK for Node against a live mmx cluster's HTTP API. Run by
// tests/integration/http_api_test.cc (NODE_PATH: the SDK installed by tests/install_node_packages.sh):
//   MMX_HTTP_BASE     http://127.0.0.1:P/v1, the served model "tiny-a"
//   MMX_GUARDED_BASE  a server with --api-keys (MMX_API_KEY is one), --max-concurrent 1 --max-queue 1
//   MMX_UNREADY_BASE  a server whose workers never came
// Asserts what the SDK sees (objects, streams, errors as the SDK's own error classes) and prints
// one JSON line of the texts it got, which the C++ test holds to the gRPC API's.
'use strict';
const assert = require('node:assert/strict');
const OpenAI = require('openai');

const model = 'tiny-a';
const messages = [{role: 'system', content: 'You are terse.'}, {role: 'user', content: 'Name three colours.'}];
const client = (baseURL, apiKey = 'no-key-needed') => new OpenAI({baseURL, apiKey, maxRetries: 0, timeout: 60000});

async function rejectsWith(promise, ErrorClass, status, check = () => true) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof ErrorClass, `expected ${ErrorClass.name}, got ${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, status);
    assert.ok(check(e), `unexpected error: ${JSON.stringify(e.error)}`);
    return true;
  });
}

async function main() {
  const api = client(process.env.MMX_HTTP_BASE);
  const out = {};

  const chat = await api.chat.completions.create({model, messages, max_tokens: 20, temperature: 0, ignore_eos: true});
  assert.equal(chat.object, 'chat.completion');
  assert.equal(chat.choices.length, 1);
  assert.equal(chat.choices[0].message.role, 'assistant');
  assert.equal(chat.choices[0].finish_reason, 'length');
  assert.equal(chat.usage.completion_tokens, 20);
  assert.equal(chat.usage.total_tokens, chat.usage.prompt_tokens + 20);
  out.chat = chat.choices[0].message.content;

  const stream = await api.chat.completions.create(
      {model, messages, max_tokens: 20, temperature: 0, ignore_eos: true, stream: true,
       stream_options: {include_usage: true}});
  let streamed = '', role = '', finish = '', usage = null, chunks = 0;
  for await (const chunk of stream) {
    ++chunks;
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    if (chunk.choices.length === 0) continue;
    const delta = chunk.choices[0].delta;
    if (delta.role) role = delta.role;
    if (delta.content) streamed += delta.content;
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.ok(chunks >= 3, `only ${chunks} chunks`);
  assert.equal(role, 'assistant');
  assert.equal(finish, 'length');
  assert.equal(streamed, out.chat, 'the streamed reply differs from the whole one');
  assert.equal(usage.completion_tokens, 20);

  const withLogprobs = await api.chat.completions.create(
      {model, messages, max_tokens: 5, temperature: 0, ignore_eos: true, logprobs: true, top_logprobs: 2});
  const content = withLogprobs.choices[0].logprobs.content;
  assert.equal(content.length, 5);
  for (const t of content) {
    assert.ok(t.logprob <= 0 && typeof t.token === 'string' && Array.isArray(t.bytes));
    assert.equal(t.top_logprobs.length, 2);
    assert.ok(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob);
    assert.ok(Math.abs(t.top_logprobs[0].logprob - t.logprob) < 1e-6, 'greedy: the chosen token is the top one');
  }

  // A stop string taken from the greedy reply: the reply ends just before its first occurrence.
  const stop = out.chat.slice(6, 9);
  const stopped = await api.chat.completions.create({model, messages, max_tokens: 20, temperature: 0, ignore_eos: true, stop});
  assert.equal(stopped.choices[0].finish_reason, 'stop');
  assert.equal(stopped.choices[0].message.content, out.chat.slice(0, out.chat.indexOf(stop)));

  const completion = await api.completions.create(
      {model, prompt: [5, 17, 42], max_tokens: 8, temperature: 0, logprobs: 3, ignore_eos: true});
  assert.equal(completion.object, 'text_completion');
  assert.equal(completion.choices[0].logprobs.token_logprobs.length, 8);
  assert.equal(completion.usage.prompt_tokens, 3);
  out.completion = completion.choices[0].text;
  out.completion_logprobs = completion.choices[0].logprobs.token_logprobs;

  const models = await api.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [model]);

  await rejectsWith(api.chat.completions.create({model, messages, n: 2}), OpenAI.BadRequestError, 400,
                    (e) => e.param === 'n');
  await rejectsWith(api.chat.completions.create({model, messages, temperature: 5}), OpenAI.BadRequestError, 400,
                    (e) => e.param === 'temperature');
  await rejectsWith(api.chat.completions.create({model: 'gpt-4o', messages}), OpenAI.NotFoundError, 404,
                    (e) => e.code === 'model_not_found');

  const key = process.env.MMX_API_KEY;
  await rejectsWith(client(process.env.MMX_GUARDED_BASE, 'wrong-key-0123456789').models.list(),
                    OpenAI.AuthenticationError, 401, (e) => e.code === 'invalid_api_key');
  // One request runs and one waits (--max-concurrent 1 --max-queue 1): with both taken, the next
  // is refused with 429; once both streams are aborted (their sequences freed), requests are
  // accepted again.
  const guarded = client(process.env.MMX_GUARDED_BASE, key);
  const running = await guarded.completions.create({model, prompt: 'a long one', max_tokens: 3000, ignore_eos: true, stream: true});
  await running[Symbol.asyncIterator]().next();  // its first tokens: it runs
  const waiting = await guarded.completions.create({model, prompt: 'waits', max_tokens: 3000, ignore_eos: true, stream: true});
  await rejectsWith(guarded.completions.create({model, prompt: 'one too many', max_tokens: 2}),
                    OpenAI.RateLimitError, 429, (e) => /queue is full/.test(e.message));
  running.controller.abort();
  waiting.controller.abort();
  let accepted = null;
  for (let i = 0; i < 200 && accepted === null; ++i) {  // the aborts reach the server asynchronously
    try {
      accepted = await guarded.completions.create({model, prompt: 'after the aborts', max_tokens: 2});
    } catch (e) {
      if (!(e instanceof OpenAI.RateLimitError)) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  assert.ok(accepted, 'the aborted streams still hold their places');

  await rejectsWith(client(process.env.MMX_UNREADY_BASE).chat.completions.create({model, messages}),
                    OpenAI.InternalServerError, 503);

  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
