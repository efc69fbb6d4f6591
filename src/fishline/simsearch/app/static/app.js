// SimSearch annotation page: the page holds what the user marks, the server answers searches.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#ffd400", "#ff4fd8", "#4fffa0", "#b48cff", "#ffffff", "#7ab8ff"];
const NAME = /^[A-Za-z0-9_-]+$/;
const state = {
  info: null,
  patch: null,
  stride: null,
  classes: [],  // {name, colour, prototypes, threshold, proposals, negatives: Map, seq}
  active: -1,
  shown: new Set(),
  background: [],  // shown candidates, each {image, x, y, score, kind: hard | easy | saved}
  notBackground: new Map(),
  views: new Map(),  // image name -> {img, svg, layer, width, height}
  model: null,  // {classes, stride, detections} when the app has a trained model
  confidence: new Map(),  // model class -> confidence threshold
  weights: null,  // channel weights the server searches with (separate channels)
};

const $ = (id) => document.getElementById(id);
const key = (p) => `${p.image}|${p.x}|${p.y}`;

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function element(tag, attributes = {}, parent = null) {
  const node = tag === "svg" || tag === "rect" || tag === "circle" || tag === "g"
    ? document.createElementNS(SVG, tag) : document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (parent) parent.appendChild(node);
  return node;
}

function imageUrl(name) {
  const channels = state.info.channels.filter((c) => state.shown.has(c)).join(",");
  return `/api/image/${encodeURIComponent(name)}?channels=${encodeURIComponent(channels)}`;
}

function buildChannels() {
  const box = $("channels");
  for (const channel of state.info.channels) {
    const label = element("label", {}, box);
    const input = element("input", { type: "checkbox", "data-channel": channel }, label);
    input.checked = true;
    label.append(` ${channel} `);
    input.addEventListener("change", () => {
      if (input.checked) state.shown.add(channel); else state.shown.delete(channel);
      for (const [name, view] of state.views) view.img.src = imageUrl(name);
    });
  }
  const table = $("correlation");
  const head = element("tr", {}, table);
  element("th", {}, head);
  state.info.channels.forEach((c) => { element("th", {}, head).textContent = c; });
  state.info.correlation.forEach((row, i) => {
    const line = element("tr", {}, table);
    element("th", {}, line).textContent = state.info.channels[i];
    row.forEach((value) => { element("td", {}, line).textContent = value.toFixed(2); });
  });
}

function renderWeights() {
  if (state.info.channel_mode !== "separate") return;
  $("weights-box").hidden = false;
  const parts = state.info.channels.map((c, i) => `${c} ${state.weights[i].toFixed(2)}`);
  $("channel-weights").textContent = `Channel weights: ${parts.join(", ")}`;
}

async function learnWeights(reset) {
  const classes = state.classes.filter((c) => c.prototypes.length).map((c) => ({
    name: c.name, prototypes: c.prototypes, negatives: [...c.negatives.values()],
  }));
  if (!reset && !classes.length) { setStatus("Draw prototypes first.", true); return; }
  try {
    const result = await api("/api/channel_weights", reset ? { reset: true } : { classes });
    state.weights = result.channel_weights;
    for (const cls of state.classes) await search(cls);
    setStatus(reset ? "Searching at the start weights again."
      : "Weights learned; proposals and thresholds now use them, and Save records them (the workflow needs the same simsearch.search.channel_weights).");
  } catch (error) {
    setStatus(error.message, true);
  }
  render();
}

function toImage(svg, event) {
  const point = svg.createSVGPoint();
  point.x = event.clientX;
  point.y = event.clientY;
  return point.matrixTransform(svg.getScreenCTM().inverse());
}

const ZOOM_LIMITS = [0.125, 16];

function buildImages() {
  const main = $("images");
  for (const { name, width, height } of state.info.displayed) {
    const box = element("div", { class: "view", "data-image": name }, main);
    const title = element("h3", {}, box);
    title.textContent = `${name} `;
    const zoomLabel = element("output", { class: "zoom" }, title);
    const tools = element("span", { class: "zoom-tools" }, title);
    const viewport = element("div", { class: "viewport" }, box);
    const stage = element("div", { class: "stage" }, viewport);
    const img = element("img", { src: imageUrl(name), alt: name }, stage);
    const svg = element("svg", { viewBox: `0 0 ${width} ${height}`, "data-image": name }, stage);
    const layer = element("g", {}, svg);
    const view = { img, svg, layer, width, height, viewport, zoomLabel, zoom: 1 };
    state.views.set(name, view);
    // small images are enlarged to about 512 px; larger ones start at native resolution
    setZoom(view, Math.max(1, Math.round(512 / width)));
    const actions = {
      "-": () => setZoom(view, view.zoom / 2),
      "+": () => setZoom(view, view.zoom * 2),
      "1:1": () => setZoom(view, 1),
      fit: () => setZoom(view, Math.min(viewport.clientWidth / width, (0.8 * window.innerHeight) / height)),
    };
    for (const [label, action] of Object.entries(actions)) {
      const button = element("button", { type: "button", "data-zoom": label }, tools);
      button.textContent = label;
      button.addEventListener("click", action);
    }
    viewport.addEventListener("wheel", (event) => {
      if (!event.ctrlKey) return;  // a plain wheel scrolls; ctrl + wheel (or a pinch) zooms
      event.preventDefault();
      setZoom(view, view.zoom * (event.deltaY < 0 ? 1.25 : 0.8), event);
    }, { passive: false });
    svg.addEventListener("mousedown", (event) => {
      if (event.button === 1 || (event.button === 0 && event.shiftKey)) startPanning(event, view);
      else startDrawing(event, name);
    });
  }
}

function setZoom(view, zoom, anchor = null) {
  // keep the image point under the cursor (or the viewport's centre) where it was
  const frame = view.viewport.getBoundingClientRect();
  const at = anchor
    ? { x: anchor.clientX - frame.left, y: anchor.clientY - frame.top }
    : { x: view.viewport.clientWidth / 2, y: view.viewport.clientHeight / 2 };
  const imageX = (view.viewport.scrollLeft + at.x) / view.zoom;
  const imageY = (view.viewport.scrollTop + at.y) / view.zoom;
  view.zoom = Math.min(Math.max(zoom, ZOOM_LIMITS[0]), ZOOM_LIMITS[1]);
  view.img.width = Math.round(view.width * view.zoom);
  view.img.height = Math.round(view.height * view.zoom);
  view.viewport.scrollLeft = imageX * view.zoom - at.x;
  view.viewport.scrollTop = imageY * view.zoom - at.y;
  view.zoomLabel.textContent = `${Math.round(100 * view.zoom)} %`;
  view.viewport.dataset.zoom = String(view.zoom);
}

function startPanning(event, view) {
  event.preventDefault();
  const start = { x: event.clientX, y: event.clientY };
  const scroll = { left: view.viewport.scrollLeft, top: view.viewport.scrollTop };
  view.viewport.classList.add("panning");
  const move = (e) => {
    view.viewport.scrollLeft = scroll.left - (e.clientX - start.x);
    view.viewport.scrollTop = scroll.top - (e.clientY - start.y);
  };
  const up = () => {
    window.removeEventListener("mousemove", move);
    window.removeEventListener("mouseup", up);
    view.viewport.classList.remove("panning");
  };
  window.addEventListener("mousemove", move);
  window.addEventListener("mouseup", up);
}

function startDrawing(event, image) {
  if (event.button !== 0) return;
  event.preventDefault();
  if (state.active < 0) { setStatus("Add a class first.", true); return; }
  const view = state.views.get(image);
  const start = toImage(view.svg, event);
  const rect = element("rect", { class: "drawing" }, view.svg);
  let end = start;
  const move = (e) => {
    end = toImage(view.svg, e);
    rect.setAttribute("x", Math.min(start.x, end.x));
    rect.setAttribute("y", Math.min(start.y, end.y));
    rect.setAttribute("width", Math.abs(end.x - start.x));
    rect.setAttribute("height", Math.abs(end.y - start.y));
  };
  const up = (e) => {
    window.removeEventListener("mousemove", move);
    window.removeEventListener("mouseup", up);
    move(e);
    rect.remove();
    addPrototype(image, start, end);
  };
  window.addEventListener("mousemove", move);
  window.addEventListener("mouseup", up);
}

function clampBox(view, x, y, width, height) {
  x = Math.min(Math.max(0, x), view.width - width);
  y = Math.min(Math.max(0, y), view.height - height);
  return { x, y, width, height };
}

async function addPrototype(image, start, end) {
  const view = state.views.get(image);
  const x0 = Math.round(Math.min(start.x, end.x)), x1 = Math.round(Math.max(start.x, end.x));
  const y0 = Math.round(Math.min(start.y, end.y)), y1 = Math.round(Math.max(start.y, end.y));
  if (x1 - x0 < 3 && y1 - y0 < 3) return;  // a click, not a drag
  let box;
  if (state.patch) {  // later prototypes keep the patch size, centred on what was drawn
    const { width, height } = state.patch;
    box = clampBox(view, Math.round((x0 + x1 - width) / 2), Math.round((y0 + y1 - height) / 2), width, height);
  } else {
    box = clampBox(view, x0, y0, Math.min(x1 - x0, view.width), Math.min(y1 - y0, view.height));
    if (box.width < 16 || box.height < 16) { setStatus("Draw at least 16 x 16 pixels.", true); return; }
  }
  const cls = state.classes[state.active];
  cls.prototypes.push({ image, ...box });
  if (!state.patch) setStatus("Computing image features (once)...");
  try {
    await search(cls);
    setStatus(`Prototype ${cls.prototypes.length} of ${cls.name} added.`);
  } catch (error) {
    cls.prototypes.pop();
    setStatus(error.message, true);
  }
  render();
}

async function removePrototype() {
  const cls = state.classes[state.active];
  if (!cls || !cls.prototypes.length) { setStatus("No prototype to remove.", true); return; }
  cls.prototypes.pop();
  cls.seq += 1;  // answers to earlier searches no longer apply
  cls.proposals = [];
  try {
    await search(cls);
    setStatus(`${cls.name}: ${cls.prototypes.length} prototype(s) left.`);
  } catch (error) {
    setStatus(error.message, true);
  }
  render();
}

async function search(cls) {
  if (!cls.prototypes.length) return;
  const seq = ++cls.seq;
  const threshold = cls.threshold;
  const data = await api("/api/search", { boxes: cls.prototypes, threshold });
  if (seq !== cls.seq) return;  // a newer search is on its way
  cls.proposals = data.proposals;
  state.patch = data.patch;
  state.stride = data.stride;
  cls.shown = threshold;
  render();
}

function addClass(name) {
  if (!NAME.test(name) || name === "background") {
    setStatus("Class names use letters, digits, _ and - (not 'background').", true);
    return null;
  }
  if (state.classes.some((c) => c.name === name)) { setStatus(`Class ${name} exists.`, true); return null; }
  const cls = {
    name, colour: colourOf(name), prototypes: [],
    threshold: 0.8, proposals: [], negatives: new Map(), seq: 0, shown: null,
  };
  state.classes.push(cls);
  state.active = state.classes.length - 1;
  setStatus(`Class ${name} added: draw a prototype.`);
  render();
  return cls;
}

function colourOf(name) {
  const known = state.classes.findIndex((c) => c.name === name);
  if (known >= 0) return state.classes[known].colour;
  const modelIndex = state.model ? state.model.classes.indexOf(name) : -1;
  return COLOURS[(modelIndex >= 0 ? modelIndex : state.classes.length) % COLOURS.length];
}

async function restore(data) {
  for (const entry of data.classes) {
    const cls = addClass(entry.name);
    cls.prototypes = entry.prototypes;
    cls.threshold = entry.threshold;
    entry.negatives.forEach((point) => cls.negatives.set(key(point), point));
    if (entry.confidence !== undefined) state.confidence.set(entry.name, entry.confidence);
  }
  state.background = data.background.proposed.map((point) => ({ ...point, kind: "saved" }));
  data.background.not_background.forEach((point) => state.notBackground.set(key(point), point));
  for (const cls of state.classes) await search(cls);
  setStatus(`Resumed ${state.info.out}.`);
}

function toggle(map, point) {
  const k = key(point);
  if (map.has(k)) map.delete(k); else map.set(k, { image: point.image, x: point.x, y: point.y, score: point.score });
}

function proposalCircle(layer, cls, point, negative) {
  const radius = state.patch ? Math.min(state.patch.width, state.patch.height) / 4 : 4;
  const circle = element("circle", {
    class: negative ? "proposal negative" : "proposal", cx: point.x, cy: point.y, r: radius,
    stroke: cls.colour, "data-class": cls.name, "data-x": point.x, "data-y": point.y,
  }, layer);
  circle.addEventListener("click", () => { toggle(cls.negatives, point); render(); });
}

function render() {
  for (const [name, view] of state.views) {
    view.layer.replaceChildren();
    for (const cls of state.classes) {
      for (const box of cls.prototypes.filter((b) => b.image === name)) {
        element("rect", { class: "prototype", x: box.x, y: box.y, width: box.width, height: box.height, stroke: cls.colour, "data-class": cls.name }, view.layer);
      }
      const drawn = new Set();
      for (const point of cls.proposals.filter((p) => p.image === name)) {
        drawn.add(key(point));
        proposalCircle(view.layer, cls, point, cls.negatives.has(key(point)));
      }
      for (const point of cls.negatives.values()) {
        if (point.image === name && !drawn.has(key(point))) proposalCircle(view.layer, cls, point, true);
      }
    }
    const size = state.patch ? state.patch.width / 2 : 8;
    for (const point of state.background.filter((p) => p.image === name)) {
      const flagged = state.notBackground.has(key(point));
      const square = element("rect", {
        class: `bg ${point.kind}${flagged ? " not-background" : ""}`, x: point.x - size / 2, y: point.y - size / 2,
        width: size, height: size, "data-x": point.x, "data-y": point.y,
      }, view.layer);
      square.addEventListener("click", () => { toggle(state.notBackground, point); render(); });
    }
    for (const found of visibleDetections().filter((d) => d.image === name)) {
      const half = state.model.stride;
      element("rect", {
        class: "detection", x: found.x - half, y: found.y - half, width: 2 * half, height: 2 * half,
        transform: `rotate(45 ${found.x} ${found.y})`, stroke: colourOf(found.class),
        "data-class": found.class, "data-x": found.x, "data-y": found.y, "data-confidence": found.confidence,
      }, view.layer);
    }
  }
  renderClasses();
  renderConfidence();
  renderWeights();
}

function visibleDetections() {
  if (!state.model) return [];
  return state.model.detections.filter((d) => d.confidence >= state.confidence.get(d.class));
}

function buildConfidence() {
  $("detection").hidden = false;
  const box = $("confidences");
  for (const name of state.model.classes) {
    if (!state.confidence.has(name)) state.confidence.set(name, 0.6);
    const label = element("label", { for: `confidence-${name}` }, box);
    label.append(`${name} `);
    element("output", { id: `confidence-value-${name}` }, label);
    const slider = element("input", {
      type: "range", id: `confidence-${name}`, min: "0", max: "1", step: "0.01", "data-class": name,
    }, box);
    slider.value = state.confidence.get(name);
    slider.addEventListener("input", () => { state.confidence.set(name, Number(slider.value)); render(); });
  }
}

function renderConfidence() {
  if (!state.model) return;
  const shown = visibleDetections();
  for (const name of state.model.classes) {
    const count = shown.filter((d) => d.class === name).length;
    $(`confidence-value-${name}`).textContent = `${state.confidence.get(name).toFixed(2)}: ${count} detection(s)`;
  }
  const missing = state.model.classes.filter((name) => !state.classes.some((c) => c.name === name));
  $("detection-info").textContent = missing.length
    ? `No annotated class for ${missing.join(", ")}: its confidence is not saved.` : "";
}

function renderClasses() {
  const list = $("classes");
  list.replaceChildren();
  state.classes.forEach((cls, index) => {
    const item = element("li", { class: index === state.active ? "active" : "", "data-class": cls.name }, list);
    element("span", { class: "swatch", style: `background:${cls.colour}` }, item);
    const positives = cls.proposals.filter((p) => !cls.negatives.has(key(p))).length;
    item.append(`${cls.name}: ${cls.prototypes.length} prototype(s), ${positives} positive(s), ${cls.negatives.size} negative(s)`);
    item.addEventListener("click", () => { state.active = index; render(); });
  });
  const slider = $("threshold");
  const cls = state.classes[state.active];
  slider.disabled = !cls;
  if (cls) slider.value = cls.threshold;
  $("threshold-value").textContent = cls ? Number(cls.threshold).toFixed(2) : "";
  $("images").dataset.shownThreshold = cls && cls.shown !== null ? String(cls.shown) : "";
  if (state.patch) {
    $("patch-info").textContent = `Patch ${state.patch.width} x ${state.patch.height} px, stride ${state.stride.toFixed(1)} px.`;
  }
  $("bg-info").textContent = state.background.length
    ? `${state.background.length} candidate(s), ${state.notBackground.size} flagged not background.` : "";
}

async function showBackground() {
  const boxes = state.classes.flatMap((c) => c.prototypes);
  if (!boxes.length) { setStatus("Draw prototypes first.", true); return; }
  const exclude = state.classes.flatMap((c) => [...c.proposals, ...c.negatives.values()])
    .map(({ image, x, y }) => ({ image, x, y }));
  try {
    const found = await api("/api/background", { boxes, exclude, count: Number($("bg-count").value) });
    state.background = [
      ...found.hard.map((point) => ({ ...point, kind: "hard" })),
      ...found.easy.map((point) => ({ ...point, kind: "easy" })),
    ];
    state.notBackground = new Map();
    setStatus("Flag the candidates that are not background.");
  } catch (error) {
    setStatus(error.message, true);
  }
  render();
}

function annotations() {
  return {
    version: 1,
    sheet: state.info.sheet,
    channels: state.info.channels,
    displayed: state.info.displayed.map((d) => d.name),
    patch: state.patch,
    stride: state.stride,
    backbone: state.info.backbone,
    classes: state.classes.map((cls) => ({
      name: cls.name,
      prototypes: cls.prototypes,
      threshold: cls.threshold,
      positives: cls.proposals.filter((p) => !cls.negatives.has(key(p))),
      negatives: [...cls.negatives.values()],
      ...(state.confidence.has(cls.name) ? { confidence: state.confidence.get(cls.name) } : {}),
    })),
    background: {
      proposed: state.background.map(({ image, x, y, score }) => ({ image, x, y, score })),
      not_background: [...state.notBackground.values()],
    },
  };
}

async function save() {
  try {
    const result = await api("/api/save", annotations());
    setStatus(`Saved ${result.saved} (${result.classes} class(es), ${result.negatives} negative(s)).`);
  } catch (error) {
    setStatus(`Not saved: ${error.message}`, true);
  }
}

async function start() {
  state.info = await api("/api/info");
  state.patch = state.info.patch;
  state.stride = state.info.stride;
  state.info.channels.forEach((c) => state.shown.add(c));
  state.weights = state.info.channel_weights;
  buildChannels();
  buildImages();
  if (state.info.model) {
    state.model = await api("/api/detections");
    if (state.info.annotations) {
      state.info.annotations.classes.forEach((entry) => {
        if (entry.confidence !== undefined) state.confidence.set(entry.name, entry.confidence);
      });
    }
    buildConfidence();
  }
  $("new-class").addEventListener("submit", (event) => {
    event.preventDefault();
    addClass($("class-name").value.trim());
    $("class-name").value = "";
  });
  $("threshold").addEventListener("input", () => {
    const cls = state.classes[state.active];
    cls.threshold = Number($("threshold").value);
    $("threshold-value").textContent = cls.threshold.toFixed(2);
    search(cls).catch((error) => setStatus(error.message, true));
  });
  $("remove-prototype").addEventListener("click", removePrototype);
  $("background").addEventListener("click", showBackground);
  $("save").addEventListener("click", save);
  $("learn-weights").addEventListener("click", () => learnWeights(false));
  $("reset-weights").addEventListener("click", () => learnWeights(true));
  if (state.info.annotations) await restore(state.info.annotations);
  render();
  document.body.dataset.ready = "1";
}

start().catch((error) => setStatus(`Cannot start: ${error.message}`, true));
