// Regenerates cases.json: added and special tokens under add_special_tokens and
// skip_special_tokens, from Hugging Face's tokenizers.js, cross-checked against the official
// Rust binding. Run from a folder where `npm install @huggingface/tokenizers@0.2.0
// tokenizers@0.23.2` was done:
//   node generate.mjs <tests/data/tokenizer-golden> > cases.json
// The output names each tokenizer variant (a base tokenizer.json, and the post_processor that
// replaces its own where given) and lists the cases, one per line.
import fs from "node:fs";
import { Tokenizer as JsTokenizer } from "@huggingface/tokenizers";
import rust from "tokenizers";

const root = process.argv[2];

// What Python transformers' LlamaTokenizerFast builds from add_bos_token: true (its
// update_post_processor): BOS before each sequence of a single or a pair.
function bosTemplate(bos, bosId) {
  return {
    type: "TemplateProcessing",
    single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
    pair: [
      { SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
      { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } },
    ],
    special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
  };
}

const qwenTexts = [
  "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
  "<|endoftext|>",
  "a<|endoftext|>b",
  "<think>\nplan</think>answer",
  "<tool_call>{\"name\": \"f\"}</tool_call><|im_end|>",
  "<|im_start|><|im_start|><|im_end|>",
  " <|im_end|> ",
  "<|im_start",
  "<|im_start|x",
  "<|IM_START|>",
  "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>",
  "text with <|vision_start|><|image_pad|><|vision_end|> inside",
  "<|endoftext|>\u00e9\u0301<|endoftext|>",
];

const deepseekTexts = [
  "<\uff5cbegin\u2581of\u2581sentence\uff5c>hello",
  "<\uff5cUser\uff5c>hi<\uff5cAssistant\uff5c>hello<\uff5cend\u2581of\u2581sentence\uff5c>",
  "a<|EOT|>b",
  "<\uff5cplace\u2581holder\u2581no\u25810\uff5c><\uff5cplace\u2581holder\u2581no\u2581799\uff5c>",
  "<\uff5cfim\u2581hole\uff5c> x",
  " <\uff5c\u2581pad\u2581\uff5c> ",
  "<\uff5cbegin\u2581of\u2581sentence",
  "<|begin\u2581of\u2581sentence|>",
  "<\uff5ctool\u2581calls\u2581begin\uff5c><\uff5ctool\u2581sep\uff5c>x<\uff5ctool\u2581calls\u2581end\uff5c>",
  "",
  "plain text, no added tokens",
];

const pairs = [
  ["question", "answer"],
  ["<\uff5cUser\uff5c>hi", "there<\uff5cend\u2581of\u2581sentence\uff5c>"],
  ["", "b"],
];

async function casesFor(name, json, texts, withPairs) {
  const js = new JsTokenizer(json, {});
  const rs = rust.Tokenizer.fromString(JSON.stringify(json));
  const out = [];
  const check = (what, a, b) => {
    if (JSON.stringify(a) !== JSON.stringify(b)) {
      throw new Error(`${name}: ${what}: tokenizers.js ${JSON.stringify(a)} != Rust ${JSON.stringify(b)}`);
    }
  };
  for (const text of texts) {
    const ids = js.encode(text, { add_special_tokens: false }).ids;
    const idsWithSpecial = js.encode(text, { add_special_tokens: true }).ids;
    check(`ids of ${JSON.stringify(text)}`, ids, (await rs.encode(text, null, { addSpecialTokens: false })).getIds());
    check(`ids_with_special of ${JSON.stringify(text)}`, idsWithSpecial,
          (await rs.encode(text, null, { addSpecialTokens: true })).getIds());
    const decode = async (skip) => {
      const mine = idsWithSpecial.length === 0 ? "" : js.decode(idsWithSpecial, {
        skip_special_tokens: skip, clean_up_tokenization_spaces: false });
      check(`decode(skip=${skip}) of ${JSON.stringify(text)}`, mine, await rs.decode(idsWithSpecial, skip));
      return mine;
    };
    out.push({ tokenizer: name, text, ids, ids_with_special: idsWithSpecial,
               decoded: await decode(false), decoded_skip_special: await decode(true) });
  }
  if (withPairs) {
    for (const [a, b] of pairs) {
      const ids = js.encode(a, { text_pair: b, add_special_tokens: false }).ids;
      const idsWithSpecial = js.encode(a, { text_pair: b, add_special_tokens: true }).ids;
      check(`pair ids of ${a}|${b}`, ids, (await rs.encode(a, b, { addSpecialTokens: false })).getIds());
      check(`pair ids_with_special of ${a}|${b}`, idsWithSpecial,
            (await rs.encode(a, b, { addSpecialTokens: true })).getIds());
      out.push({ tokenizer: name, text: a, text_pair: b, ids, ids_with_special: idsWithSpecial });
    }
  }
  return out;
}

const read = (p) => JSON.parse(fs.readFileSync(`${root}/${p}`, "utf8"));
const qwen = read("qwen3/tokenizer.json");
const deepseek = read("deepseek_v3/tokenizer.json");
const bosPostProcessor = bosTemplate("<\uff5cbegin\u2581of\u2581sentence\uff5c>", 0);
const variants = {
  qwen3: { base: "qwen3" },
  deepseek_v3: { base: "deepseek_v3" },
  deepseek_v3_bos_template: { base: "deepseek_v3", post_processor: bosPostProcessor },
};
const cases = [
  ...(await casesFor("qwen3", qwen, qwenTexts, false)),
  ...(await casesFor("deepseek_v3", deepseek, deepseekTexts, false)),
  ...(await casesFor("deepseek_v3_bos_template", { ...deepseek, post_processor: bosPostProcessor },
                     deepseekTexts, true)),
];
process.stdout.write(`{"variants": ${JSON.stringify(variants)},\n"cases": [\n` +
                     cases.map((c) => JSON.stringify(c)).join(",\n") + "\n]}\n");
