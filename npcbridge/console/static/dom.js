// Small DOM helpers and number formats the console's views share.

export const $ = (selector) => document.querySelector(selector);

// an element with properties (class, dataset, on<event> listeners, anything else as is) and
// children (nodes, strings, nested arrays; null and undefined are skipped)
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node[key] = value;
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export const usd = (value) => (value === null || value === undefined ? "—" : "$" + Number(value).toFixed(6));
export const ms = (value) => (value === null || value === undefined ? "—" : Number(value).toFixed(1) + " ms");

// a status line: the text and how it reads (note, error)
export function showStatus(node, text, kind = "note") {
  node.textContent = text;
  node.className = kind;
}

const openers = new Map();

// what runs when a tab opens (the inspector and the metrics refresh then)
export function onOpen(name, fn) {
  openers.set(name, fn);
}

export function openTab(name) {
  for (const button of document.querySelectorAll("#tabs button")) button.classList.toggle("active", button.dataset.tab === name);
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.id === name);
  const open = openers.get(name);
  if (open) open().catch(() => {});
}

export const isOpen = (name) => $("#" + name).classList.contains("active");
