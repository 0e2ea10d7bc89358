/* lifecircle map runtime: builds the Leaflet layers of map.html from the page's
 * JSON data blocks (script elements of type application/json, ids lc-*). Every string that
 * ends up in HTML (tooltips, popups, legend, title) was escaped in Python;
 * nothing here builds HTML from data. window.lifecircle exposes the map, its
 * layers and feature counts, for scripts and tests. */
(function () {
  "use strict";
  var LC = (window.lifecircle = { map: null, config: null, layers: {}, counts: {}, selected: {} });

  function readJson(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  /* One ring of Google's encoded polyline (6 decimals, latitude first) as [lon, lat]. */
  function decodeRing(text) {
    var ring = [], index = 0, lat = 0, lon = 0;
    function next() {
      var result = 0, shift = 0, chunk;
      do {
        chunk = text.charCodeAt(index++) - 63;
        result |= (chunk & 31) << shift;
        shift += 5;
      } while (chunk >= 32);
      return result & 1 ? ~(result >> 1) : result >> 1;
    }
    while (index < text.length) {
      lat += next();
      lon += next();
      ring.push([lon / 1e6, lat / 1e6]);
    }
    return ring;
  }

  /* A layer block ({features: [{e|l|c|g, p}]}) as a GeoJSON FeatureCollection. */
  function toGeoJson(block) {
    return {
      type: "FeatureCollection",
      features: block.features.map(function (f) {
        var geometry = f.g;
        if (f.e) {
          geometry = {
            type: "MultiPolygon",
            coordinates: f.e.map(function (polygon) {
              return polygon.map(decodeRing);
            }),
          };
        } else if (f.l) {
          geometry = { type: "MultiLineString", coordinates: f.l.map(decodeRing) };
        } else if (f.c) {
          geometry = { type: "Point", coordinates: f.c };
        }
        return { type: "Feature", geometry: geometry, properties: f.p };
      }),
    };
  }

  function readLayer(id) {
    var block = readJson(id);
    return block ? toGeoJson(block) : null;
  }

  function count(layer) {
    return layer.getLayers().length;
  }

  function addPanes(map, panes) {
    Object.keys(panes).forEach(function (name) {
      map.createPane(name).style.zIndex = String(panes[name]);
    });
  }

  function addBoundary(parent) {
    var layer = L.geoJSON(readLayer("lc-data-boundary"), {
      pane: "lc-area",
      interactive: false,
      className: "lc-boundary",
      style: { color: "#212121", weight: 2, opacity: 0.9, dashArray: "6 4", fill: false },
    });
    layer.addTo(parent);
    LC.layers.boundary = layer;
    LC.counts.boundary = count(layer);
  }

  /* A gap's popup: its skeleton's pieces (shared by gaps of a kind) around its own
     values, both escaped in Python. */
  function gapPopup(skeletons, slots) {
    var pieces = skeletons[slots[0]], html = pieces[0];
    for (var i = 1; i < pieces.length; i++) html += slots[i] + pieces[i];
    return html;
  }

  function addGaps(parent) {
    var colors = LC.config.gap_colors;
    var block = readJson("lc-data-gaps");
    var skeletons = block ? block.popups : [];
    var layer = L.geoJSON(block ? toGeoJson(block) : null, {
      pane: "lc-gaps",
      className: "lc-gap",
      style: function (f) {
        var c = colors[f.properties.b];
        var outline = LC.config.gap_item_colors[f.properties.c % LC.config.gap_item_colors.length];
        return { color: outline, weight: 2, opacity: 0.95, fillColor: c, fillOpacity: 0.6 };
      },
      onEachFeature: function (f, l) {
        l.bindTooltip(f.properties.t, { sticky: true });
        l.bindPopup(function () {
          return gapPopup(skeletons, f.properties.p);
        }, { maxWidth: 360 });
      },
    });
    layer.addTo(parent);
    LC.layers.gaps = layer;
    LC.counts.gaps = count(layer);
    LC.gapParts = layer.getLayers();
  }

  /* Show the gaps of one scored item (value: its index) or of all (""). */
  LC.showGapType = function (value) {
    var layer = LC.layers.gaps;
    if (!layer) return 0;
    layer.clearLayers();
    LC.gapParts.forEach(function (part) {
      if (value === "" || String(part.feature.properties.c) === String(value)) {
        layer.addLayer(part);
      }
    });
    return count(layer);
  };

  /* Streets by class and water from the study's data: drawn when there are no
   * tiles, or as soon as a tile fails to load (offline), with a short note. */
  var STREET_STYLES = [
    { color: "#a3adb3", weight: 4, opacity: 1 },
    { color: "#c3cacf", weight: 2.2, opacity: 1 },
    { color: "#cfd6da", weight: 1.2, opacity: 1, dashArray: "3 3" },
  ];

  function addContext(map) {
    var element = document.getElementById("lc-data-context");
    LC.tilesFailed = false;
    LC.contextShown = false;
    if (!element) return;
    var data = readJson("lc-data-context");
    var group = L.layerGroup();
    if (data.water) {
      L.geoJSON(toGeoJson(data.water), {
        pane: "lc-context",
        interactive: false,
        className: "lc-water",
        style: { stroke: false, fillColor: "#a6cee3", fillOpacity: 1 },
      }).addTo(group);
    }
    if (data.streets) {
      L.geoJSON(toGeoJson(data.streets), {
        pane: "lc-context",
        interactive: false,
        className: "lc-street",
        style: function (f) {
          return STREET_STYLES[f.properties.c] || STREET_STYLES[2];
        },
      }).addTo(group);
    }
    LC.layers.context = group;
    LC.counts.context = {
      streets: data.streets ? data.streets.features.length : 0,
      water: data.water ? data.water.features.length : 0,
    };
    var tiles = [];
    map.eachLayer(function (l) {
      if (l instanceof L.TileLayer) tiles.push(l);
    });
    function show() {
      if (LC.contextShown) return;
      LC.contextShown = true;
      group.addTo(map);
    }
    if (!tiles.length) {
      show();
      return;
    }
    tiles.forEach(function (t) {
      t.on("tileerror", function () {
        if (LC.tilesFailed) return;
        LC.tilesFailed = true;
        show();
        addBox(map, "bottomleft", "lc-note", LC.config.tile_note);
      });
    });
  }

  /* What-if panel: tick sites; the page takes the union of their coverage sets
   * (computed in Python) and sums residents over it, nothing more. */
  function addWhatif(map) {
    var data = readJson("lc-data-whatif");
    if (!data) return;
    var t = LC.config.whatif_text;
    var chosen = {};
    var markers = L.layerGroup().addTo(map);
    var rows = ["<details class=\"lc-whatif-all\"><summary>" + t.whatif + "</summary>"];
    rows.push('<div class="lc-whatif-out"></div><div class="lc-whatif-list">');
    var heading = null;
    data.sites.forEach(function (site, i) {
      var group = site.kind === "edit" ? t.whatif_edits :
        (site.rank !== null ? t.whatif_recommended : t.whatif_candidates);
      if (group !== heading) {
        rows.push("<div class=\"lc-whatif-h\">" + group + "</div>");
        heading = group;
      }
      var label = (site.rank !== null ? "#" + site.rank + " " : "") + site.id +
        " (+" + site.covers.length + ")";
      rows.push('<label class="lc-row"><input type="checkbox" data-i="' + i + '"> ' +
        label + "</label>");
    });
    rows.push("</div></details>");
    var box = addBox(map, "topleft", "lc-whatif", rows.join(""));
    var root = box.getContainer();
    var out = root.querySelector(".lc-whatif-out");
    function update() {
      var union = {};
      Object.keys(chosen).forEach(function (i) {
        data.sites[i].covers.forEach(function (k) {
          union[k] = true;
        });
      });
      var compounds = Object.keys(union);
      var sums = data.groups.map(function (g, gi) {
        return compounds.reduce(function (total, k) {
          return total + data.population[k][gi];
        }, 0);
      });
      LC.whatif = { sites: Object.keys(chosen).map(function (i) { return data.sites[i].id; }),
        residents: sums, compounds: compounds.length };
      if (!Object.keys(chosen).length) {
        out.innerHTML = '<span class="lc-muted">' + t.whatif_none + "</span>";
        return;
      }
      var lines = ["<b>" + t.whatif_newly.replace("{target}", data.target_label) + "</b>"];
      data.groups.forEach(function (g, gi) {
        lines.push('<div class="lc-row">' + data.group_labels[gi] + ': <span class="lc-whatif-n" ' +
          'data-g="' + gi + '">' + Math.round(sums[gi]).toLocaleString() + "</span></div>");
      });
      lines.push('<div class="lc-row">' + t.whatif_flips + ': <span class="lc-whatif-c">' +
        compounds.length + "</span></div>");
      out.innerHTML = lines.join("");
    }
    root.querySelectorAll("input[data-i]").forEach(function (input) {
      L.DomEvent.on(input, "change", function () {
        var i = Number(input.getAttribute("data-i"));
        var site = data.sites[i];
        if (input.checked) {
          chosen[i] = L.circleMarker([site.lat, site.lon], {
            radius: 9, color: "#6a1b9a", weight: 3, fillColor: "#fff", fillOpacity: 0.6,
            className: "lc-whatif-site",
          }).addTo(markers);
        } else {
          markers.removeLayer(chosen[i]);
          delete chosen[i];
        }
        update();
      });
    });
    update();
    LC.layers.whatif = markers;
    LC.counts.whatif = data.sites.length;
  }

  /* Small frames: the layer list and the legend fold into buttons. */
  function compactControls(map) {
    var size = map.getSize();
    var small = size.x < 800 || size.y < 560;
    var container = map.getContainer();
    container.classList.toggle("lc-compact", small);
    LC.compact = small;
    if (!small) return;
    container.querySelectorAll(".lc-legend details.lc-legend-all").forEach(function (d) {
      d.open = false;
    });
    // the layer control is added after this runs: listen on the container, in the
    // capture phase (controls stop clicks from bubbling to the map)
    container.addEventListener(
      "click",
      function (e) {
        var toggle = e.target.closest && e.target.closest(".leaflet-control-layers-toggle");
        if (!toggle) return;
        e.preventDefault();
        toggle.parentNode.classList.toggle("lc-open");
      },
      true
    );
    map.on("click", function () {
      container.querySelectorAll(".leaflet-control-layers.lc-open").forEach(function (c) {
        c.classList.remove("lc-open");
      });
    });
  }

  /* Band layers overlap from compound to compound, so they are filled faintly;
   * one compound's own isochrones (fill 0.15) stand out. */
  function isoLayer(collection, index, className, fill) {
    var color = LC.config.iso_colors[index];
    return L.geoJSON(collection, {
      pane: "lc-iso",
      interactive: false,
      className: className,
      style: { color: color, weight: 1.5, opacity: 0.9, fillColor: color, fillOpacity: fill },
    });
  }

  function addIsochrones(parents) {
    var data = readJson("lc-data-isochrones");
    if (!data) return;
    Object.keys(data.features).forEach(function (key) {
      data.features[key] = toGeoJson(data.features[key]);
    });
    LC.isochrones = data;
    LC.layers.isochrones = {};
    LC.counts.isochrones = {};
    data.bands.forEach(function (band, index) {
      var key = String(band);
      var parent = parents[key];
      if (!parent) return;
      var layer = isoLayer(data.features[key], index, "lc-iso lc-iso-" + key, 0.04);
      layer.addTo(parent);
      LC.layers.isochrones[key] = layer;
      LC.counts.isochrones[key] = count(layer);
    });
  }

  /* Show or hide one compound's isochrones (all bands, largest first). */
  LC.toggleIsochrones = function (k) {
    if (LC.selected[k]) {
      LC.map.removeLayer(LC.selected[k]);
      delete LC.selected[k];
      return false;
    }
    var data = LC.isochrones;
    if (!data) return false;
    var group = L.featureGroup();
    for (var i = data.bands.length - 1; i >= 0; i--) {
      var key = String(data.bands[i]);
      var mine = data.features[key].features.filter(function (f) {
        return f.properties.k === k;
      });
      isoLayer({ type: "FeatureCollection", features: mine }, i, "lc-iso-selected", 0.15).addTo(
        group
      );
    }
    group.addTo(LC.map);
    LC.selected[k] = group;
    return true;
  };

  /* The scorecard popup of a compound. Every piece is escaped HTML from Python
   * (names, ids, labels) or a number. */
  function scorecard(p) {
    var card = LC.config.card, t = card.text;
    var h = ['<div class="lc-card"><div class="lc-card-h">', p.n, '</div><div class="lc-card-m">', p.i];
    if (p.pop) h.push(" · ", t.population, " ", p.pop);
    h.push('</div><div class="lc-score">', t.score, " <b>", p.s, "</b> / 100</div>");
    if (p.r) h.push('<div class="lc-warn">', p.r, "</div>");
    h.push('<table class="lc-items"><tr><th>', t.item, "</th><th>", t.nearest, "</th><th>", t.limit,
      "</th><th></th></tr>");
    card.tiers.forEach(function (tier, ti) {
      var rows = [];
      card.items.forEach(function (item, ii) {
        if (item.tier !== ti) return;
        var ok = p.ok[ii] === 1, m = p.m[ii];
        rows.push('<tr class="', ok ? "ok" : "no", '"><td>', item.label, '</td><td class="n">',
          m === null ? t.unreachable : m.toFixed(1) + t.minutes_unit, '</td><td class="n">≤ ',
          item.limit, "</td><td>", ok ? t.met : t.missing, "</td></tr>");
      });
      if (!rows.length) return;
      var v = p.v[ti];
      h.push('<tr class="lc-tier ', v === 1 ? "ok" : v === 0 ? "no" : "", '"><th colspan="3">', tier,
        "</th><th>", v === 1 ? t.pass : v === 0 ? t.fail : "", "</th></tr>");
      h.push.apply(h, rows);
    });
    h.push('</table><div class="lc-card-f">', p.o, "</div>");
    if (p.iso) h.push('<button type="button" class="lc-iso-btn" data-k="', p.k, '">', t.show_iso, "</button>");
    h.push("</div>");
    return h.join("");
  }

  function addCompounds(parent) {
    var colors = LC.config.score_colors;
    var layer = L.geoJSON(readLayer("lc-data-compounds"), {
      className: "lc-compound",
      style: function (f) {
        return { color: "#37474f", weight: 1, opacity: 0.9, fillColor: colors[f.properties.b], fillOpacity: 0.7 };
      },
      pointToLayer: function (f, latlng) {
        return L.circleMarker(latlng, { radius: 7, className: "lc-compound" });
      },
      onEachFeature: function (f, l) {
        var p = f.properties;
        l.bindTooltip(p.n + " · " + LC.config.card.text.score + " " + p.s, { sticky: true });
        l.bindPopup(function () {
          return scorecard(p);
        }, { maxWidth: 380, minWidth: 260, className: "lc-popup", autoPanPaddingTopLeft: [50, 70] });
      },
    });
    layer.addTo(parent);
    LC.layers.compounds = layer;
    LC.counts.compounds = count(layer);
  }

  function addGates(parent) {
    var layer = L.geoJSON(readLayer("lc-data-gates"), {
      pane: "lc-gates",
      pointToLayer: function (f, latlng) {
        return L.circleMarker(latlng, {
          pane: "lc-gates",
          className: "lc-gate",
          radius: 3.5,
          color: "#ffffff",
          weight: 1,
          fillColor: "#212121",
          fillOpacity: 1,
        });
      },
      onEachFeature: function (f, l) {
        l.bindTooltip(f.properties.t);
      },
    });
    layer.addTo(parent);
    LC.layers.gates = layer;
    LC.counts.gates = count(layer);
  }

  function addSites(parent) {
    var layer = L.geoJSON(readLayer("lc-data-sites"), {
      pane: "lc-gates",
      pointToLayer: function (f, latlng) {
        return L.marker(latlng, {
          pane: "lc-gates",
          icon: L.divIcon({
            className: "lc-site",
            html: "<span>" + f.properties.r + "</span>",
            iconSize: [22, 22],
          }),
        });
      },
      onEachFeature: function (f, l) {
        l.bindTooltip(f.properties.t);
        l.bindPopup(f.properties.p);
      },
    });
    layer.addTo(parent);
    LC.layers.sites = layer;
    LC.counts.sites = count(layer);
  }

  /* parent: a marker cluster group (many facilities) or a plain layer group (few). */
  function addFacilities(parent) {
    var data = readJson("lc-data-facilities");
    var icons = data.types.map(function (t) {
      return L.divIcon({
        className: "lc-poi",
        html: t.html,
        iconSize: [22, 22],
        iconAnchor: [11, 11],
        popupAnchor: [0, -11],
        tooltipAnchor: [11, 0],
      });
    });
    var markers = data.points.map(function (p) {
      return L.marker([p[0], p[1]], { icon: icons[p[2]] })
        .bindTooltip(p[3], { direction: "right" })
        .bindPopup(p[4], { maxWidth: 320 });
    });
    if (parent.addLayers) parent.addLayers(markers);
    else markers.forEach(function (marker) { parent.addLayer(marker); });
    LC.layers.facilities = parent;
    LC.counts.facilities = markers.length;
  }

  /* The one map: 社区 outlines with their figures, and facilities coloured by category
   * (a legend selector shows one category). */
  function addOnemap(districtParent, facilityParent) {
    var data = readJson("lc-data-onemap");
    if (!data) return;
    var districts = L.geoJSON(toGeoJson(data.districts), {
      pane: "lc-area",
      className: "lc-district",
      style: { color: "#263238", weight: 2.5, opacity: 0.9, dashArray: "8 4", fillOpacity: 0.03 },
      onEachFeature: function (f, l) {
        l.bindTooltip(f.properties.t, { sticky: true });
        l.bindPopup(function () {
          return gapPopup(skeletons, f.properties.p);
        }, { maxWidth: 360 });
      },
    });
    districts.addTo(districtParent);
    LC.layers.onemap = districts;
    LC.counts.onemap = count(districts);
    var points = L.layerGroup();
    LC.categoryParts = (data.points || []).map(function (p) {
      var marker = L.circleMarker([p[0], p[1]], {
        pane: "lc-gates",
        className: "lc-onemap-poi",
        radius: 5,
        color: "#ffffff",
        weight: 1,
        fillColor: data.categories[p[2]].color,
        fillOpacity: 0.95,
      })
        .bindTooltip(p[3])
        .bindPopup(p[4]);
      marker.lcCategory = p[2];
      points.addLayer(marker);
      return marker;
    });
    if (facilityParent) points.addTo(facilityParent);
    LC.layers.onemap_facilities = points;
    LC.counts.onemap_facilities = LC.categoryParts.length;
  }

  /* Show the one-map facilities of one category (value: its index) or of all (""). */
  LC.showCategory = function (value) {
    var layer = LC.layers.onemap_facilities;
    if (!layer) return 0;
    layer.clearLayers();
    LC.categoryParts.forEach(function (marker) {
      if (value === "" || String(marker.lcCategory) === String(value)) layer.addLayer(marker);
    });
    return count(layer);
  };

  /* The elderly shuttle: route legs and stops (popups with the timetable summary). */
  function addShuttle(parent) {
    var data = readJson("lc-data-shuttle");
    if (!data) return;
    var color = LC.config.shuttle_color;
    var group = L.featureGroup();
    var route = null;
    if (data.route) {
      route = L.geoJSON(toGeoJson(data.route), {
        pane: "lc-gaps",
        className: "lc-shuttle-route",
        style: { color: color, weight: 4, opacity: 0.85 },
        onEachFeature: function (f, l) {
          l.bindTooltip(f.properties.t, { sticky: true });
        },
      }).addTo(group);
    }
    var stops = L.geoJSON(toGeoJson(data.stops), {
      pane: "lc-gates",
      pointToLayer: function (f, latlng) {
        return L.circleMarker(latlng, {
          pane: "lc-gates",
          className: "lc-shuttle-stop",
          radius: 6,
          color: color,
          weight: 3,
          fillColor: "#ffffff",
          fillOpacity: 1,
        });
      },
      onEachFeature: function (f, l) {
        l.bindTooltip(f.properties.t);
        l.bindPopup(f.properties.p, { maxWidth: 320 });
      },
    }).addTo(group);
    group.addTo(parent);
    LC.layers.shuttle = group;
    LC.counts.shuttle = { stops: count(stops), legs: route ? count(route) : 0 };
  }

  function addBox(map, position, className, html) {
    var box = L.control({ position: position });
    box.onAdd = function () {
      var div = L.DomUtil.create("div", className);
      div.innerHTML = html;
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      return div;
    };
    box.addTo(map);
    return box;
  }

  /* A full-screen button on the standard Fullscreen API (also inside an iframe
   * that allows it). */
  function addFullscreen(map, label) {
    var control = L.control({ position: "topleft" });
    control.onAdd = function () {
      var bar = L.DomUtil.create("div", "leaflet-bar lc-fullscreen");
      var link = L.DomUtil.create("a", "", bar);
      link.href = "#";
      link.title = label;
      link.setAttribute("role", "button");
      link.setAttribute("aria-label", label);
      link.innerHTML = '<i class="fa fa-expand" aria-hidden="true"></i>';
      L.DomEvent.disableClickPropagation(bar);
      L.DomEvent.on(link, "click", function (e) {
        L.DomEvent.preventDefault(e);
        var container = map.getContainer();
        if (document.fullscreenElement) {
          document.exitFullscreen();
        } else if (container.requestFullscreen) {
          container.requestFullscreen();
        }
      });
      document.addEventListener("fullscreenchange", function () {
        map.invalidateSize();
      });
      return bar;
    };
    control.addTo(map);
  }

  function addControls(map) {
    var cfg = LC.config;
    var title = L.DomUtil.create("div", "lc-title", map.getContainer());
    title.innerHTML = cfg.title_html;
    L.DomEvent.disableClickPropagation(title);
    addBox(map, "bottomright", "lc-legend", cfg.legend_html);
    addFullscreen(map, cfg.fullscreen_label);
    cfg.attribution.forEach(function (html) {
      map.attributionControl.addAttribution(html);
    });
    map.on("popupopen", function (e) {
      var button = e.popup.getElement().querySelector(".lc-iso-btn");
      if (!button) return;
      var k = Number(button.getAttribute("data-k"));
      button.classList.toggle("on", Boolean(LC.selected[k]));
      button.onclick = function () {
        button.classList.toggle("on", LC.toggleIsochrones(k));
      };
    });
  }

  /* Entry point, called once by map.html with the Leaflet map and the
   * feature groups (by layer key) to fill. */
  LC.build = function (map, parents) {
    LC.map = map;
    LC.config = readJson("lc-config");
    addPanes(map, LC.config.panes);
    if (parents.boundary) addBoundary(parents.boundary);
    if (parents.gaps) addGaps(parents.gaps);
    addIsochrones(parents.isochrones || {});
    addCompounds(parents.compounds);
    if (parents.gates) addGates(parents.gates);
    if (parents.sites) addSites(parents.sites);
    if (parents.facilities) addFacilities(parents.facilities);
    if (parents.onemap) addOnemap(parents.onemap, parents.onemap_facilities);
    if (parents.shuttle) addShuttle(parents.shuttle);
    addContext(map);
    addControls(map);
    addWhatif(map);
    compactControls(map);
    var picker = map.getContainer().querySelector(".lc-gap-select");
    if (picker) {
      L.DomEvent.on(picker, "change", function () {
        LC.showGapType(picker.value);
      });
    }
    var categories = map.getContainer().querySelector(".lc-cat-select");
    if (categories) {
      L.DomEvent.on(categories, "change", function () {
        LC.showCategory(categories.value);
      });
    }
    document.documentElement.setAttribute("data-lc-ready", "1");
  };
})();
