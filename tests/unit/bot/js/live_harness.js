// Runs bot/web/static/live.js against fakes of the browser objects it uses (the DOM, EventSource,
// fetch, DOMParser) and prints what it did as JSON. Usage: node live_harness.js LIVE_JS SCENARIO_JSON
"use strict";
const fs = require("fs");
const vm = require("vm");

const script = fs.readFileSync(process.argv[2], "utf8");
const scenario = JSON.parse(process.argv[3]);

function element(attrs) {
  return {
    attrs: Object.assign({}, attrs),
    children: ["the page as it was"],
    getAttribute(name) {
      return Object.prototype.hasOwnProperty.call(this.attrs, name) ? this.attrs[name] : null;
    },
    hasAttribute(name) {
      return Object.prototype.hasOwnProperty.call(this.attrs, name);
    },
    replaceChildren(...nodes) {
      this.children = nodes;
    },
  };
}

const main = element(scenario.main);
const graph = { src: "/runs/run_1/graph.svg" };
const document = {
  getElementById(id) {
    return id === "main" ? main : id === "graph" ? graph : null;
  },
};
const sources = [];
class EventSource {
  constructor(url) {
    this.url = url;
    this.listeners = {};
    sources.push(this);
  }
  addEventListener(type, listener) {
    (this.listeners[type] = this.listeners[type] || []).push(listener);
  }
  emit(type, data) {
    (this.listeners[type] || []).forEach((listener) => listener({ data: JSON.stringify(data) }));
  }
}
const fetched = [];
function fetch(url) {
  fetched.push(url);
  return Promise.resolve({ ok: true, text: () => Promise.resolve(scenario.page) });
}
class DOMParser {
  parseFromString(html) {
    return { getElementById: (id) => (id === "main" ? { childNodes: [html] } : null) };
  }
}
const window = { EventSource, fetch, DOMParser, location: { pathname: "/somewhere" } };
vm.runInNewContext(script, { window, document, EventSource, fetch, DOMParser, Date, encodeURIComponent });

(async () => {
  const fetchesAfter = [];
  for (const [type, data] of scenario.events) {
    if (sources.length) {
      sources[0].emit(type, data);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    fetchesAfter.push(fetched.length);
  }
  const out = {
    sources: sources.map((s) => s.url),
    fetched,
    fetchesAfter,
    children: main.children,
    graph: graph.src,
  };
  process.stdout.write(JSON.stringify(out));
})();
