package tokenizer

import (
	"encoding/json"
	"fmt"
)

// chatMLTemplate is the ChatML chat template of ByteLevelFiles.
const chatMLTemplate = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

// ByteLevelFiles returns Gantry's built-in tokenizer as the contents of a
// tokenizer.json and a tokenizer_config.json: a byte-level BPE whose
// vocabulary is the 256 byte symbols (id = byte value) plus the special
// tokens <|endoftext|> (256; BOS, EOS and PAD), <|im_start|> (257) and
// <|im_end|> (258), with no merges, GPT-2's pre-tokenizer and a ChatML
// chat template. Every text encodes to one id per UTF-8 byte.
func ByteLevelFiles() (tokenizerJSON, configJSON []byte) {
	vocab := make(map[string]int, 256)
	for b := 0; b < 256; b++ {
		vocab[string(byteToRune[b])] = b
	}
	special := []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"}
	added := make([]map[string]any, len(special))
	for i, s := range special {
		added[i] = map[string]any{
			"id": 256 + i, "content": s, "single_word": false, "lstrip": false,
			"rstrip": false, "normalized": false, "special": true,
		}
	}
	byteLevel := map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
	tj := map[string]any{
		"version":        "1.0",
		"truncation":     nil,
		"padding":        nil,
		"added_tokens":   added,
		"normalizer":     nil,
		"pre_tokenizer":  byteLevel,
		"post_processor": byteLevel,
		"decoder":        byteLevel,
		"model": map[string]any{
			"type": "BPE", "dropout": nil, "unk_token": nil,
			"continuing_subword_prefix": nil, "end_of_word_suffix": nil,
			"fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
			"vocab": vocab, "merges": []string{},
		},
	}
	cj := map[string]any{
		"tokenizer_class":              "PreTrainedTokenizerFast",
		"bos_token":                    "<|endoftext|>",
		"eos_token":                    "<|endoftext|>",
		"pad_token":                    "<|endoftext|>",
		"unk_token":                    nil,
		"add_bos_token":                false,
		"add_eos_token":                false,
		"clean_up_tokenization_spaces": false,
		"model_max_length":             2048,
		"chat_template":                chatMLTemplate,
	}
	var err error
	if tokenizerJSON, err = json.MarshalIndent(tj, "", "  "); err != nil {
		panic(fmt.Sprintf("tokenizer: marshal built-in tokenizer.json: %v", err)) // static data: cannot fail
	}
	if configJSON, err = json.MarshalIndent(cj, "", "  "); err != nil {
		panic(fmt.Sprintf("tokenizer: marshal built-in tokenizer_config.json: %v", err))
	}
	return tokenizerJSON, configJSON
}
