// How llm-d-inference-sim reads a request's stream: it decodes the body with Go's
// encoding/json into its ChatCompletionsRequest (v0.10.2 pkg/llm-d-inference-sim/
// chat_completion.go Unmarshal: json.Unmarshal(data, c)). The fields that decide whether a
// stream carries usage are declared here as in v0.10.2 pkg/api/request.go (baseRequest,
// baseCompletionsRequest, StreamOptions, ChatCompletionsRequest); messages are kept raw,
// the gateway never touches them.
//
// stdin: one base64 body per line. stdout: one JSON object per body: "ok" (the body
// decodes), "stream", "usage" (IncludeUsage() of pkg/api/request.go: a stream carries usage
// only when stream_options.include_usage is true), "max_tokens" (GetMaxCompletionTokens():
// max_completion_tokens, else max_tokens; null when neither), "n", and the keys Go takes
// for each name (strings.EqualFold, the equality encoding/json's folded field names give).
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
)

type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type baseRequest struct {
	Model  string `json:"model"`
	Stream bool   `json:"stream"`
}

type baseCompletionsRequest struct {
	baseRequest
	StreamOptions *StreamOptions `json:"stream_options,omitempty"`
	N             *int           `json:"n,omitempty"`
}

type ChatCompletionsRequest struct {
	baseCompletionsRequest
	Messages            json.RawMessage `json:"messages"`
	MaxTokens           *int64          `json:"max_tokens"`
	MaxCompletionTokens *int64          `json:"max_completion_tokens"`
}

type reading struct {
	OK     bool                `json:"ok"`
	Stream bool                `json:"stream"`
	Usage  bool                `json:"usage"`
	Max    *int64              `json:"max_tokens"`
	N      *int                `json:"n"`
	Keys   map[string][]string `json:"keys"`
}

// Keys of the object in raw that Go takes for one of names, in order, duplicates kept.
func keys(raw []byte, names []string, found map[string][]string, nested func(string, []byte)) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return
		}
		key, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return
		}
		for _, name := range names {
			if strings.EqualFold(key, name) {
				found[name] = append(found[name], key)
				if nested != nil {
					nested(name, value)
				}
			}
		}
	}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		body, err := base64.StdEncoding.DecodeString(in.Text())
		if err != nil {
			panic(err)
		}
		var request ChatCompletionsRequest
		r := reading{Keys: map[string][]string{}}
		r.OK = json.Unmarshal(body, &request) == nil
		r.Stream = request.Stream
		r.Usage = !request.Stream || (request.StreamOptions != nil && request.StreamOptions.IncludeUsage)
		r.Max = request.MaxCompletionTokens
		if r.Max == nil {
			r.Max = request.MaxTokens
		}
		r.N = request.N
		keys(body, []string{"stream", "stream_options", "max_tokens", "max_completion_tokens", "n"}, r.Keys, func(name string, value []byte) {
			if name == "stream_options" {
				keys(value, []string{"include_usage"}, r.Keys, nil)
			}
		})
		if err := out.Encode(r); err != nil {
			panic(err)
		}
	}
}
