// Framewise drawing: boxes over a playing <video> (in sync with its frames) and the dashboard bar chart.
"use strict";

window.Framewise = window.Framewise || {};

(function (ns) {
  const COLOURS = { gt: "#ffd600", TP: "#00c853", FP: "#ff1744", unscored: "#b0bec5" };

  /** Group rows of {frame, x, y, w, h, ...} by frame, for O(1) lookup on every presented frame. */
  function byFrame(rows) {
    const index = new Map();
    for (const row of rows) {
      const list = index.get(row.frame);
      if (list) list.push(row);
      else index.set(row.frame, [row]);
    }
    return index;
  }

  class Overlay {
    constructor(video, canvas, info) {
      this.sourceWidth = 640;
      this.sourceHeight = 360;
      this.video = video;
      this.canvas = canvas;
      this.info = info;
      this.ctx = canvas.getContext("2d");
      this.fps = 0;
      this.truth = new Map();
      this.detections = new Map();
      this.callbackId = null;
      this.rafId = null;
      const redraw = () => this.draw(this.video.currentTime);
      for (const event of ["loadeddata", "seeked", "timeupdate", "resize"]) video.addEventListener(event, redraw);
      window.addEventListener("resize", redraw);
      video.addEventListener("play", () => this.follow());
    }

    /** Start drawing for one video: its fps and pixel size are those the boxes were computed in. */
    load(meta) {
      this.stop();
      this.fps = meta.fps || 0;
      this.sourceWidth = meta.width || 640;
      this.sourceHeight = meta.height || 360;
      this.truth = new Map();
      this.detections = new Map();
      this.canvas.dataset.truthFrames = "0";
      this.draw(0);
      this.follow();
    }

    setTruth(rows) {
      this.truth = byFrame(rows);
      this.canvas.dataset.truthFrames = String(this.truth.size);
      this.draw(this.video.currentTime);
    }

    setDetections(rows) {
      this.detections = byFrame(rows);
      this.draw(this.video.currentTime);
    }

    /** The frame on screen at media time t. The epsilon absorbs float error: k / fps * fps can land just
     * below k, which would show frame k's boxes one frame late. */
    frameAt(t) {
      return this.fps > 0 ? Math.floor(t * this.fps + 1e-6) : -1;
    }

    /** Redraw on every presented frame: requestVideoFrameCallback gives the exact media time of the frame
     * being composited; without it, requestAnimationFrame while playing approximates with currentTime. */
    follow() {
      if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) {
        if (this.callbackId !== null) return;
        const onFrame = (_now, metadata) => {
          this.draw(metadata.mediaTime);
          this.callbackId = this.video.requestVideoFrameCallback(onFrame);
        };
        this.callbackId = this.video.requestVideoFrameCallback(onFrame);
      } else if (this.rafId === null) {
        const onTick = () => {
          this.draw(this.video.currentTime);
          this.rafId = this.video.paused || this.video.ended ? null : requestAnimationFrame(onTick);
        };
        this.rafId = requestAnimationFrame(onTick);
      }
    }

    stop() {
      if (this.callbackId !== null) this.video.cancelVideoFrameCallback(this.callbackId);
      if (this.rafId !== null) cancelAnimationFrame(this.rafId);
      this.callbackId = null;
      this.rafId = null;
    }

    draw(mediaTime) {
      const ctx = this.ctx;
      const frame = this.frameAt(mediaTime);
      // Backing store at the displayed size (crisp at any video resolution); boxes are in video pixels,
      // so a transform maps them, and strokes and text are sized in screen pixels.
      const dpr = window.devicePixelRatio || 1;
      const pixelWidth = Math.max(1, Math.round((this.canvas.clientWidth || this.sourceWidth) * dpr));
      const pixelHeight = Math.max(1, Math.round((this.canvas.clientHeight || this.sourceHeight) * dpr));
      if (this.canvas.width !== pixelWidth || this.canvas.height !== pixelHeight) {
        this.canvas.width = pixelWidth;
        this.canvas.height = pixelHeight;
      }
      const kx = pixelWidth / this.sourceWidth;
      const ky = pixelHeight / this.sourceHeight;
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.clearRect(0, 0, pixelWidth, pixelHeight);
      ctx.setTransform(kx, 0, 0, ky, 0, 0);
      const truth = this.truth.get(frame) || [];
      const detections = this.detections.get(frame) || [];
      const width = (2 * dpr) / kx;
      this.fontPx = (12 * dpr) / ky;
      ctx.lineWidth = width;
      ctx.font = `${this.fontPx}px system-ui, sans-serif`;
      ctx.setLineDash([]);
      for (const box of truth) this.box(box, COLOURS.gt, box.label, true);
      let tp = 0;
      let fp = 0;
      ctx.setLineDash([width * 3, width * 2]);
      for (const d of detections) {
        if (d.validation_result === "TP") tp += 1;
        if (d.validation_result === "FP") fp += 1;
        const colour = COLOURS[d.validation_result] || COLOURS.unscored;
        this.box(d, colour, `${d.label} ${d.confidence.toFixed(2)}`);
      }
      // Read by people (the caption) and by the browser test (the data attributes).
      this.canvas.dataset.frame = String(frame);
      this.canvas.dataset.boxes = String(truth.length + detections.length);
      this.canvas.dataset.truth = String(truth.length);
      this.canvas.dataset.tp = String(tp);
      this.canvas.dataset.fp = String(fp);
      if (this.info) {
        const parts = [`frame ${frame < 0 ? "–" : frame}`, `${truth.length} ground-truth`];
        if (this.detections.size) parts.push(`${tp} TP`, `${fp} FP`);
        this.info.textContent = parts.join(" · ");
      }
    }

    /** Ground-truth labels go under the box, detection labels over it, so a TP's two labels do not overlap. */
    box(b, colour, label, below = false) {
      const ctx = this.ctx;
      ctx.strokeStyle = colour;
      ctx.strokeRect(b.x, b.y, b.w, b.h);
      if (label) {
        ctx.fillStyle = colour;
        const above = b.y - this.fontPx * 0.3;
        const under = b.y + b.h + this.fontPx;
        const room = below ? under <= this.sourceHeight : above >= this.fontPx;
        const inside = below ? b.y + b.h - this.fontPx * 0.3 : b.y + this.fontPx;
        ctx.fillText(label, b.x + 2, room ? (below ? under : above) : inside);
      }
    }
  }

  /** Parse a JSON Lines body (one object per non-empty line). */
  function parseJsonl(text) {
    return text.split("\n").filter((line) => line.trim()).map((line) => JSON.parse(line));
  }

  /** Bars of [label, value] pairs on a canvas: plain 2D drawing, so no chart library is shipped. */
  function drawBarChart(canvas, entries) {
    const ctx = canvas.getContext("2d");
    const { width, height } = canvas;
    const pad = { top: 18, bottom: 24, left: 8, right: 8 };
    ctx.clearRect(0, 0, width, height);
    const max = Math.max(1, ...entries.map(([, value]) => value));
    const slot = (width - pad.left - pad.right) / Math.max(1, entries.length);
    const palette = { queued: "#9e9e9e", processing: "#fb8c00", completed: "#43a047", failed: "#e53935" };
    ctx.font = "12px system-ui, sans-serif";
    ctx.textAlign = "center";
    entries.forEach(([label, value], i) => {
      const barHeight = ((height - pad.top - pad.bottom) * value) / max;
      const x = pad.left + i * slot + slot * 0.15;
      const y = height - pad.bottom - barHeight;
      ctx.fillStyle = palette[label] || "#5c6bc0";
      ctx.fillRect(x, y, slot * 0.7, barHeight);
      ctx.fillStyle = "#1d2330";
      ctx.fillText(String(value), x + slot * 0.35, y - 4);
      ctx.fillText(label, x + slot * 0.35, height - 8);
    });
    canvas.dataset.bars = String(entries.length);
  }

  ns.Overlay = Overlay;
  ns.parseJsonl = parseJsonl;
  ns.drawBarChart = drawBarChart;
})(window.Framewise);
