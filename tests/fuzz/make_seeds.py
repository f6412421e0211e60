#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/ (checked in; run again after a format change).

Files named regression-* are inputs that once crashed a harness (found by bench/fuzz.sh); they
stay, so CI replays them on every run.

Each harness gets a few valid inputs of the shapes it parses, so fuzzing starts from inputs that
reach deep into the parser rather than from nothing. Protobuf seeds are encoded by protoc from
text format; envelopes are built here with the same layout and CRC-32C as transport/envelope.cc.
"""
import json
import os
import struct
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")
GOLDEN = os.path.join(ROOT, "tests", "data", "golden", "tiny-a")


def write(harness, name, data):
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def copy(harness, name, path):
    with open(path, "rb") as f:
        write(harness, name, f.read())


def safetensors(tensors):
    header, blob = {"__metadata__": {"format": "pt"}}, b""
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + blob


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def frame(header, payload, sender=1, key=7, token=(0x1111, 0x2222)):
    prefix = struct.pack("<IHHII", 0x54584D4D, 2, 0, sender, len(header))
    prefix += struct.pack("<QQQQI", token[0], token[1], key, len(payload), 0)
    prefix += struct.pack("<I", crc32c(prefix + header))
    whole = prefix + header
    return struct.pack("<H", len(whole)) + whole + payload  # the harness's layout


def encode(message, text, proto="mmx/v1/wire.proto"):
    return subprocess.run(["protoc", "-I", os.path.join(ROOT, "proto"), "--encode=mmx.v1." + message, proto],
                          input=text.encode(), capture_output=True, check=True).stdout


def npy(shape, values):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % (
        ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else ""))
    pad = 64 - (10 + len(header) + 1) % 64
    header += " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + struct.pack("<%df" % len(values), *values)


def tokenizer(pre_tokenizer, normalizer=None, decoder=None, post=None):
    vocab = {c: i for i, c in enumerate(["a", "b", "c", "d", "Ġ", "ab", "abc", "Ġa", "!", "1"])}
    t = {"version": "1.0", "truncation": None, "padding": None,
         "added_tokens": [{"id": 10, "content": "<s>", "single_word": False, "lstrip": False, "rstrip": False,
                           "normalized": False, "special": True}],
         "normalizer": normalizer, "pre_tokenizer": pre_tokenizer, "post_processor": post, "decoder": decoder,
         "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                   "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                   "vocab": vocab, "merges": ["a b", "ab c", "Ġ a"]}}
    return json.dumps(t, indent=1)


def main():
    # Seeds are rewritten; inputs that once crashed a harness (regression-*) are kept for good.
    for root, _, files in os.walk(OUT):
        for name in files:
            if not name.startswith("regression-"):
                os.remove(os.path.join(root, name))
    write("safetensors_fuzz", "two-tensors", safetensors({
        "w": ("BF16", [2, 2], b"\x80\x3f" * 4), "b": ("F32", [2], struct.pack("<2f", 1.0, -2.0))}))
    write("safetensors_fuzz", "empty-tensor", safetensors({"e": ("F32", [0, 3], b"")}))
    write("safetensors_fuzz", "i64", safetensors({"i": ("I64", [1], struct.pack("<q", 5))}))
    copy("checkpoint_index_fuzz", "golden-index", os.path.join(GOLDEN, "model.safetensors.index.json"))
    copy("model_config_fuzz", "golden-config", os.path.join(GOLDEN, "config.json"))
    bench = os.path.join(ROOT, "..", "shared", "bench", "bench-m.config.json")
    if os.path.exists(bench):
        copy("model_config_fuzz", "bench-m-config", bench)
    split = {"type": "Split", "pattern": {"Regex": r"'s|'t| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"},
             "behavior": "Isolated", "invert": False}
    write("tokenizer_fuzz", "byte-level", tokenizer(
        {"type": "Sequence", "pretokenizers": [split, {"type": "ByteLevel", "add_prefix_space": False,
                                                        "trim_offsets": False, "use_regex": False}]},
        normalizer={"type": "NFC"}, decoder={"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                                             "use_regex": False},
        post={"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                                       {"Sequence": {"id": "A", "type_id": 0}}],
              "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
              "special_tokens": {"<s>": {"id": "<s>", "ids": [10], "tokens": ["<s>"]}}}))
    write("tokenizer_fuzz", "replace-digits", tokenizer(
        {"type": "Digits", "individual_digits": True},
        normalizer={"type": "Sequence", "normalizers": [{"type": "Replace", "pattern": {"String": " "},
                                                          "content": "Ġ"}, {"type": "Lowercase"}]},
        decoder={"type": "Replace", "pattern": {"String": "Ġ"}, "content": " "}))
    for path in ["deploy/shard-configs/medium-disaggregated.yaml", "deploy/shard-configs/small-disaggregated.yaml",
                 "deploy/examples/plans/mixed.shard.yaml", "bench/loopback-cluster.yaml"]:
        copy("shard_config_fuzz", os.path.basename(path), os.path.join(ROOT, path))
    for path in ["deploy/examples/clusters/mixed.yaml", "deploy/examples/clusters/consumer24-int8.yaml"]:
        copy("cluster_spec_fuzz", os.path.basename(path), os.path.join(ROOT, path))
    write("npy_fuzz", "vector", npy([3], [1.0, 2.0, 3.0]))
    write("npy_fuzz", "matrix", npy([2, 2], [0.5, -1.0, 0.0, 4.0]))
    hidden = 64
    step = encode("StepHeader", "step_id: 3 micro_batch: 0 layer: 0 num_micro_batches: 1 sequence_epoch: 1 "
                  "sequences { sequence_id: 9 start_position: 0 num_tokens: 2 sample: true temperature: 0.5 }")
    write("data_plane_fuzz", "step-tokens", frame(step, struct.pack("<2i", 5, 6)))
    step_act = encode("StepHeader", "step_id: 4 layer: 1 sequences { sequence_id: 9 start_position: 2 num_tokens: 1 }")
    write("data_plane_fuzz", "step-activations", frame(step_act, struct.pack("<%df" % hidden, *([0.25] * hidden))))
    dispatch = encode("DispatchHeader", "step_id: 4 layer: 1 expert_ids: [0, 3] weights: [0.75, 0.25]")
    write("data_plane_fuzz", "dispatch", frame(dispatch, struct.pack("<%df" % (2 * hidden), *([1.0] * 2 * hidden))))
    combine = encode("CombineHeader", "step_id: 4 layer: 1 num_rows: 1")
    write("data_plane_fuzz", "combine", frame(combine, struct.pack("<%df" % hidden, *([2.0] * hidden))))
    tokens = encode("TokensHeader", "step_id: 4 tokens { sequence_id: 9 token_id: 17 logprob: -0.5 "
                    "top_token_ids: [17, 3] top_logprobs: [-0.5, -1.5] }")
    write("data_plane_fuzz", "tokens", frame(tokens, b""))
    scored = encode("TokensHeader", "step_id: 5 prompt { sequence_id: 9 rows { token_id: 6 logprob: -2.5 "
                    "top_token_ids: [1] top_logprobs: [-0.1] } }")
    write("data_plane_fuzz", "tokens-prompt-scores", frame(scored, b""))
    step_scored = encode("StepHeader", "step_id: 5 layer: -1 sequences { sequence_id: 9 start_position: 0 num_tokens: 2 "
                         "next_token_ids: [6] prompt_logprobs: 1 }")
    write("data_plane_fuzz", "step-prompt-scores", frame(step_scored, struct.pack("<2i", 5, 6)))
    inference = "mmx/v1/inference.proto"
    write("generate_request_fuzz", "ids", encode("GenerateRequest", "prompt_token_ids: [1, 2, 3] sampling "
                                                 "{ max_tokens: 4 temperature: 0.7 top_p: 0.9 top_k: 5 seed: 1 "
                                                 "logprobs: 2 stop_token_ids: [7] }", inference))
    write("generate_request_fuzz", "text", encode("GenerateRequest", 'prompt: "Hello <s> world" sampling '
                                                  '{ max_tokens: 2 stop: ["\\n\\n", "end"] }', inference))
    write("generate_request_fuzz", "chat", encode("GenerateRequest", 'messages { role: "system" content: "Be brief." } '
                                                  'messages { role: "user" content: "hi <end_of_sentence>" } '
                                                  'sampling { max_tokens: 3 ignore_eos: true }', inference))
    write("submit_job_request_fuzz", "two", encode("SubmitJobRequest", 'idempotency_key: "k1" requests '
                                                   '{ prompt_token_ids: [5] sampling { max_tokens: 2 } } requests '
                                                   '{ prompt: "abc" sampling { max_tokens: 1 } }', inference))

    # OpenAI-compatible HTTP bodies (tests/fuzz/openai_request_fuzz.cc parses each as both kinds).
    write("openai_request_fuzz", "chat", json.dumps({
        "model": "tiny-a", "messages": [{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "max_tokens": 4, "temperature": 0.5, "top_p": 0.9, "seed": 3, "stop": ["\n", "end"],
        "logprobs": True, "top_logprobs": 2, "stream": True, "stream_options": {"include_usage": True}}))
    write("openai_request_fuzz", "completion-ids", json.dumps({
        "prompt": [1, 2, 3], "max_tokens": 0, "echo": True, "logprobs": 1, "ignore_eos": True, "top_k": 5}))
    write("openai_request_fuzz", "completion-text", json.dumps({"prompt": ["Hello <s> world"], "stop": "x", "n": 1}))


if __name__ == "__main__":
    main()
