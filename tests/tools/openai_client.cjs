// The official `openai` npm client against a live slimlm server. Prints one JSON object with
// what each call returned; the C++ test (serve_cli_test.cc) checks it.
//   node openai_client.cjs OPENAI_MODULE_DIR BASE_URL API_KEY MODEL
const [moduleDir, baseURL, apiKey, model] = process.argv.slice(2);
const OpenAI = require(moduleDir);

async function main() {
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
  const out = {};

  const models = await client.models.list();
  out.models = models.data.map((m) => m.id);

  const completion = await client.completions.create({
    model, prompt: 'Once upon a time', max_tokens: 12, temperature: 0,
  });
  out.completion = {
    text: completion.choices[0].text,
    finish_reason: completion.choices[0].finish_reason,
    usage: completion.usage,
  };

  const messages = [{ role: 'user', content: 'Tell me a story.' }];
  const chat = await client.chat.completions.create({
    model, messages, max_tokens: 10, temperature: 0,
  });
  out.chat = {
    content: chat.choices[0].message.content,
    role: chat.choices[0].message.role,
    finish_reason: chat.choices[0].finish_reason,
    usage: chat.usage,
  };

  const stream = await client.chat.completions.create({
    model, messages, max_tokens: 10, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  let content = '';
  let chunks = 0;
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    chunks += 1;
    if (chunk.usage) usage = chunk.usage;
    if (chunk.choices.length > 0) {
      content += chunk.choices[0].delta.content ?? '';
      finish = chunk.choices[0].finish_reason ?? finish;
    }
  }
  out.chat_stream = { content, chunks, finish_reason: finish, usage };

  const textStream = await client.completions.create({
    model, prompt: 'Once upon a time', max_tokens: 12, temperature: 0, stream: true,
  });
  let text = '';
  for await (const chunk of textStream) text += chunk.choices[0]?.text ?? '';
  out.completion_stream = { text };

  // Errors come back as the client's typed errors, with the server's status and message.
  try {
    await client.completions.create({ model: 'no-such-model', prompt: 'x', max_tokens: 1 });
    out.unknown_model = { status: 200 };
  } catch (e) {
    out.unknown_model = { status: e.status, code: e.code, message: e.message };
  }
  try {
    await client.completions.create({ model, prompt: 'x', max_tokens: -3 });
    out.bad_max_tokens = { status: 200 };
  } catch (e) {
    out.bad_max_tokens = { status: e.status, param: e.param, message: e.message };
  }
  try {
    const wrong = new OpenAI({ baseURL, apiKey: 'wrong-key', maxRetries: 0 });
    await wrong.models.list();
    out.wrong_key = { status: 200 };
  } catch (e) {
    out.wrong_key = { status: e.status, name: e.constructor.name };
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(`openai client failed: ${e.stack || e}`);
  process.exit(1);
});
