// Yelb's page: the original Angular component's behaviour, without a
// framework. On load it asks getvotes, then getstats; a vote asks
// /api/<restaurant> and, once that answer has arrived (the original did not
// wait, and could show the counts from before the vote), getvotes.
"use strict";

(function () {
  // The original takes the page's URL as the app server's address and
  // appends "/api/...": at the root that gives "//api/...", which the UI
  // server and the app server accept. Kept, so that path stays exercised
  // (but from the page's directory, so that /index.html works too).
  const appserver = window.location.href.split(/[?#]/)[0].replace(/[^/]*$/, "");
  const api = (name) => appserver + "/api/" + name;

  // The original's colour scheme, in getvotes' order.
  const colors = { outback: "#5AA454", bucadibeppo: "#A10A28", ihop: "#C7B42C", chipotle: "#AAAAAA" };
  const labels = { outback: "Outback", bucadibeppo: "Buca di Beppo", ihop: "IHOP", chipotle: "Chipotle" };
  const svgNS = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);

  function showError(msg) {
    const el = $("error");
    el.textContent = msg;
    el.hidden = !msg;
  }

  async function get(name) {
    const res = await fetch(api(name), { cache: "no-store" });
    if (!res.ok) {
      throw new Error("/api/" + name + ": " + res.status + " " + (await res.text()).trim());
    }
    return res.json();
  }

  function svg(tag, attrs) {
    const el = document.createElementNS(svgNS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    return el;
  }

  // drawPie draws one slice per restaurant with votes, in getvotes' order,
  // from 12 o'clock clockwise; each slice carries data-name and data-value.
  function drawPie(votes) {
    const pie = $("pie");
    pie.replaceChildren();
    const total = votes.reduce((s, v) => s + v.value, 0);
    const r = 100;
    if (total === 0) {
      pie.appendChild(svg("circle", { r: r, fill: "#eeeeee", "data-name": "none" }));
      const t = svg("text", { "text-anchor": "middle", y: 5, fill: "#777777", "font-size": 14 });
      t.textContent = "no votes yet";
      pie.appendChild(t);
      return;
    }
    let angle = 0;
    for (const v of votes) {
      if (v.value === 0) continue;
      const share = v.value / total;
      const attrs = { fill: colors[v.name] || "#888888", stroke: "#ffffff", "stroke-width": 1,
        "data-name": v.name, "data-value": v.value, class: "slice" };
      if (share === 1) {
        pie.appendChild(svg("circle", Object.assign({ r: r }, attrs)));
        break;
      }
      const a0 = angle, a1 = angle + share * 2 * Math.PI;
      angle = a1;
      const x0 = r * Math.sin(a0), y0 = -r * Math.cos(a0);
      const x1 = r * Math.sin(a1), y1 = -r * Math.cos(a1);
      const large = a1 - a0 > Math.PI ? 1 : 0;
      attrs.d = `M0,0 L${x0.toFixed(3)},${y0.toFixed(3)} A${r},${r} 0 ${large} 1 ${x1.toFixed(3)},${y1.toFixed(3)} Z`;
      pie.appendChild(svg("path", attrs));
    }
  }

  function drawLegend(votes) {
    const total = votes.reduce((s, v) => s + v.value, 0);
    $("votes-total").textContent = String(total);
    const items = votes.map((v) => {
      const li = document.createElement("li");
      li.id = "legend-" + v.name;
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = colors[v.name] || "#888888";
      const count = document.createElement("span");
      count.className = "count";
      count.id = "votes-" + v.name;
      count.textContent = String(v.value);
      const pct = total ? Math.round((100 * v.value) / total) + "%" : "0%";
      li.append(sw, (labels[v.name] || v.name) + ":", count, " (" + pct + ")");
      return li;
    });
    $("legend").replaceChildren(...items);
  }

  async function getvotes() {
    try {
      const votes = await get("getvotes");
      drawPie(votes);
      drawLegend(votes);
      showError("");
    } catch (e) {
      showError("Could not read the votes: " + e.message);
    }
  }

  async function getstats() {
    try {
      const stats = await get("getstats");
      $("pageviews").textContent = String(stats.pageviews);
      $("hostname").textContent = String(stats.hostname);
    } catch (e) {
      showError("Could not read the stats: " + e.message);
    }
  }

  async function vote(restaurant, button) {
    button.disabled = true;
    try {
      await get(restaurant);
    } catch (e) {
      showError("Could not vote: " + e.message);
      button.disabled = false;
      return;
    }
    button.disabled = false;
    await getvotes();
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const b of document.querySelectorAll("button.vote")) {
      b.addEventListener("click", () => vote(b.dataset.restaurant, b));
    }
    getvotes();
    getstats();
  });
})();
