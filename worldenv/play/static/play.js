// The page of `worldenv play`: draws the frames the server sends (binary, see
// worldenv/play/protocol.py), sends the action the held keys, the mouse or a gamepad make,
// and shows the readout. Plain JS, no build step, nothing loaded from elsewhere.
"use strict";

const FRAME_KIND = 1, VIDEO_KIND = 2, HEADER_BYTES = 34;  // protocol.FRAME.size
const DREAM_TERMINATED = 1, TRUTH_TERMINATED = 2, HAS_TRUTH = 4;
const VIDEO_FORMATS = ["mp4", "gif"], VIDEO_TYPES = { mp4: "video/mp4", gif: "image/gif" };
const DEADZONE = 0.15;  // a gamepad stick at rest reads a few hundredths off zero

// Exposed for the browser test and for a curious person's console.
const play = window.play = { hello: null, last: null, frames: 0, seq: 0, saved: null, errors: [], closed: null };
const $ = (id) => document.getElementById(id);
const held = new Set();
let seq = 0, sentAction = null, target = null, mouseDown = false;
const sentAt = new Map();  // seq -> when it was sent, for the input-to-frame time
const shown = [];  // arrival times of the last second's frames

const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
ws.binaryType = "arraybuffer";
ws.onmessage = (event) => (typeof event.data === "string" ? onText(JSON.parse(event.data)) : onBinary(event.data));
ws.onclose = (event) => {
  play.closed = { code: event.code, reason: event.reason };
  const why = event.code === 1009 ? "a message was too large" : event.reason || `code ${event.code}`;
  showError(`disconnected (${why}); reload the page to play again`, true);
};

function send(message) {
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
}

function showError(text, fatal) {
  play.errors.push(text);
  const box = $("error");
  if (box.classList.contains("fatal")) return;  // the reason the session ended stays on screen
  box.hidden = false;
  box.textContent = text;
  box.classList.toggle("fatal", fatal);
  if (!fatal) setTimeout(() => { if (box.textContent === text) box.hidden = true; }, 4000);
}

function onText(message) {
  if (message.type === "hello") setUp(message);
  else if (message.type === "status") $("status").textContent = message.text;
  else if (message.type === "error") showError(message.text, message.fatal);
  else if (message.type === "model") { $("model-name").textContent = message.current; $("status").textContent = "playing"; }
  else if (message.type === "saved") $("saved").append(` (${message.frames} frames, ${(message.bytes / 1024).toFixed(0)} kB)`);
}

function setUp(hello) {
  play.hello = hello;
  $("scene").textContent = `- ${hello.scene}, ${hello.fps} frames/s`;
  $("status").textContent = `playing (player ${hello.player} of at most ${hello.max_players})`;
  $("model-name").textContent = hello.models.current;
  $("truth-panel").hidden = !hello.truth;
  const list = $("keys");
  const byLabel = new Map();
  for (const key of hello.controls.keys) {
    byLabel.set(key.label, [...(byLabel.get(key.label) || []), ...key.codes]);
  }
  for (const [label, codes] of byLabel) {
    const item = document.createElement("li");
    item.innerHTML = codes.map((code) => `<kbd>${code.replace(/^Key|^Arrow/, "")}</kbd>`).join(" or ") + ` ${label}`;
    list.append(item);
  }
  $("mouse-help").hidden = !hello.controls.mouse_goal;
  const select = $("model");
  const served = hello.models.served.split("@");
  select.append(new Option(`served: ${hello.models.served}`, `${served[0]}@${parseInt(served[1])}`));
  for (const name of hello.models.components) select.append(new Option(name, name));
  $("save-seconds").max = hello.save_seconds;
  requestAnimationFrame(pollInput);
}

function onBinary(buffer) {
  const view = new DataView(buffer);
  const kind = view.getUint8(0);
  if (kind === VIDEO_KIND) return onVideo(VIDEO_FORMATS[view.getUint8(1)], new Uint8Array(buffer, 2));
  if (kind !== FRAME_KIND) return showError(`unknown message kind ${kind} from the server`, false);
  const flags = view.getUint8(1), height = view.getUint16(2, true), width = view.getUint16(4, true);
  const frame = {
    frame: view.getUint32(6, true), seq: view.getUint32(10, true),
    dreamReward: view.getFloat32(14, true), truthReward: view.getFloat32(18, true), psnr: view.getFloat32(22, true),
    dreamMs: view.getFloat32(26, true), truthMs: view.getFloat32(30, true),
    dreamDone: !!(flags & DREAM_TERMINATED), truthDone: !!(flags & TRUTH_TERMINATED),
    dream: new Uint8Array(buffer, HEADER_BYTES, height * width * 3),
    truth: flags & HAS_TRUTH ? new Uint8Array(buffer, HEADER_BYTES + height * width * 3, height * width * 3) : null,
    height, width, received: performance.now(),
  };
  play.last = frame;
  play.frames += 1;
  draw($("dream"), frame.dream, width, height);
  if (frame.truth) draw($("truth"), frame.truth, width, height);
  readout(frame);
}

const scratch = document.createElement("canvas");
function draw(canvas, rgb, width, height) {
  scratch.width = width;
  scratch.height = height;
  const context = scratch.getContext("2d");
  const image = context.createImageData(width, height);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    image.data[j] = rgb[i]; image.data[j + 1] = rgb[i + 1]; image.data[j + 2] = rgb[i + 2]; image.data[j + 3] = 255;
  }
  context.putImageData(image, 0, 0);
  const out = canvas.getContext("2d");
  out.imageSmoothingEnabled = false;  // nearest neighbour: the pixels the model made, only larger
  out.drawImage(scratch, 0, 0, canvas.width, canvas.height);
  if (target) {
    const [x, y] = [target[0] * canvas.width, target[1] * canvas.height];
    out.strokeStyle = "#f0f";
    out.lineWidth = 2;
    out.beginPath(); out.moveTo(x - 8, y); out.lineTo(x + 8, y); out.moveTo(x, y - 8); out.lineTo(x, y + 8); out.stroke();
  }
}

const fixed = (value, digits) => (Number.isFinite(value) ? value.toFixed(digits) : value === Infinity ? "identical" : "-");
function readout(frame) {
  const now = frame.received;
  shown.push(now);
  while (shown[0] < now - 1000) shown.shift();
  $("shown-fps").textContent = `${shown.length}`;
  $("frame").textContent = `${frame.frame}`;
  $("dream-ms").textContent = fixed(frame.dreamMs, 1);
  $("truth-ms").textContent = fixed(frame.truthMs, 1);
  $("dream-fps").textContent = fixed(1000 / frame.dreamMs, 0);
  $("truth-fps").textContent = fixed(1000 / frame.truthMs, 0);
  $("dream-reward").textContent = fixed(frame.dreamReward, 3);
  $("truth-reward").textContent = fixed(frame.truthReward, 3);
  $("dream-done").textContent = frame.dreamDone ? "yes" : "no";
  $("truth-done").textContent = play.hello && play.hello.truth ? (frame.truthDone ? "yes" : "no") : "-";
  $("psnr").textContent = `${fixed(frame.psnr, 2)} dB`;
  if (sentAt.has(frame.seq)) {  // the first frame made under this input
    $("latency").textContent = `${(now - sentAt.get(frame.seq)).toFixed(0)} ms`;
    sentAt.delete(frame.seq);
  }
}

function onVideo(format, bytes) {
  const url = URL.createObjectURL(new Blob([bytes], { type: VIDEO_TYPES[format] }));
  play.saved = { format, url, bytes: bytes.length };
  const link = document.createElement("a");
  link.href = url;
  link.download = `worldenv-play-${play.hello.scene}.${format}`;
  link.textContent = `download ${link.download}`;
  $("saved").replaceChildren(link);
}

// ---- input ------------------------------------------------------------------------
function keyAction() {
  const action = new Array(play.hello.action_dim).fill(0);
  for (const key of play.hello.controls.keys) {
    if (key.codes.some((code) => held.has(code))) action[key.dim] += key.value;
  }
  return action.map((value) => Math.max(-1, Math.min(1, value)));
}

function padAction() {
  const pad = [...(navigator.getGamepads ? navigator.getGamepads() : [])].find((p) => p && p.connected);
  $("gamepad").textContent = pad ? `Gamepad: ${pad.id}` : "Gamepad: none (press a button on one to use it)";
  if (!pad) return null;
  const action = play.hello.controls.gamepad.map(([axis, gain]) => {
    const value = pad.axes[axis] || 0;
    return Math.abs(value) < DEADZONE ? 0 : Math.max(-1, Math.min(1, value * gain));
  });
  return action.some((value) => value !== 0) ? action : null;
}

function sendAction(action) {
  const rounded = action.map((value) => Math.round(value * 1000) / 1000);
  if (target === null && sentAction && rounded.every((value, i) => value === sentAction[i])) return;
  sentAction = rounded;
  target = null;
  play.seq = seq += 1;
  sentAt.set(seq, performance.now());
  send({ type: "action", seq, action: rounded });
}

function pollInput() {  // once per animation frame: at most 60 messages a second
  const pad = padAction();
  if (!mouseDown && (pad || target === null)) sendAction(pad || keyAction());
  requestAnimationFrame(pollInput);
}

function isControl(code) {
  return play.hello && play.hello.controls.keys.some((key) => key.codes.includes(code));
}
window.addEventListener("keydown", (event) => {
  if (event.target.tagName === "INPUT" || event.target.tagName === "SELECT") return;
  if (event.code === "KeyR" && !event.repeat) send({ type: "reset" });
  if (!isControl(event.code)) return;
  event.preventDefault();  // the arrows would scroll the page
  held.add(event.code);
  target = null;  // a key takes the arm back from the mouse
  sendAction(keyAction());
});
window.addEventListener("keyup", (event) => {
  if (!held.delete(event.code)) return;
  sendAction(keyAction());
});
window.addEventListener("blur", () => held.clear());  // keys released elsewhere are never seen going up

function pointTarget(event) {
  const box = event.target.getBoundingClientRect();
  const u = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
  const v = Math.min(1, Math.max(0, (event.clientY - box.top) / box.height));
  target = [Math.round(u * 1000) / 1000, Math.round(v * 1000) / 1000];
  play.seq = seq += 1;
  sentAt.set(seq, performance.now());
  send({ type: "target", seq, target });
}
for (const canvas of [$("dream"), $("truth")]) {
  canvas.addEventListener("mousedown", (event) => {
    if (!play.hello || !play.hello.controls.mouse_goal) return;
    mouseDown = true;
    pointTarget(event);
  });
  canvas.addEventListener("mousemove", (event) => { if (mouseDown) pointTarget(event); });
}
window.addEventListener("mouseup", () => { mouseDown = false; });

// ---- buttons ----------------------------------------------------------------------
$("reset").addEventListener("click", () => send({ type: "reset" }));
$("switch").addEventListener("click", () => {
  const [model, served] = $("model").value.split("@");
  send({ type: "model", model, steps: served ? parseInt(served) : parseInt($("steps").value) });
});
$("save").addEventListener("click", () => {
  $("saved").textContent = "writing the video...";
  send({ type: "save", seconds: parseFloat($("save-seconds").value), format: $("save-format").value });
});
