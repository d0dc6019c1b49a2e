"""Benchmark of Creative DNA (loop 4) on synthetic data.

1. Recovery: simulated ads rendered as real H.264 + AAC clips (160x284, 12 fps, 4 s) from their
   true genes; extraction must recover cuts, brightness, colourfulness, faces, text and sound.
2. Hook taxonomy accuracy on the hand-labelled opening lines of tests/fixtures/hook_lines.csv:
   the test split (never tuned on) with its confusion, and every batch of the dev split.
3. Speed: DNA of a 30 s 1280x720 30 fps H.264 clip with audio, pinned to one core, against
   plain PyAV decoding of the same file with the same frame sampling (the floor).
4. Why ads win: after 14 simulated days, do the genes reported first by evidence include the
   simulator's true top-3 genes by effect, with the right sign?

Run: ``python -m benchmarks.bench_dna [--quick] [--parts taxonomy,why,recovery,speed]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from adflywheel.loops.dna.fingerprint import dna_from_features
from adflywheel.loops.dna.patterns import AdOutcome, gene_patterns
from adflywheel.loops.dna.taxonomy import classify_text, opening_line
from adflywheel.services.dna import service as dna_service
from adflywheel.sim.market import MarketConfig, SimulatedMarket
from adflywheel.sim.market.genes import GENE_MEAN, GENE_SD, NUMERIC_GENES
from adflywheel.sim.market.render import plan_clip, render_clip


def _rho(a: list[float], b: list[float]) -> float:
    return round(float(spearmanr(a, b)[0]), 4)


def recovery(n_clips: int, seed: int = 11) -> dict[str, Any]:
    """Render ``n_clips`` simulated ads from their true genes and compare extraction with what
    was put in."""
    per_campaign = 6
    accounts = max(1, -(-n_clips // (2 * per_campaign)))
    market = SimulatedMarket(MarketConfig(seed=seed, n_accounts=accounts))
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for account in market.accounts():
        for ad in market.platform(account).list_ads():
            if len(rows) >= n_clips:
                break
            genes = market.evaluation.genes(ad.external_id)
            text = ad.creative.primary_text
            plan = plan_clip(genes, caption=opening_line(text), seed=len(rows))
            clip = render_clip(plan)
            dna = dna_service.extract_from_video(clip.data, text)
            v, h, a = dna.visual_dna, dna.hook_dna, dna.audio_dna
            rows.append(
                {
                    "cuts": (len(plan.cut_times), v["shot_count"] - 1),
                    "brightness": (clip.raw_brightness, genes["brightness"], v["brightness"]),
                    "colour": (clip.raw_colourfulness, genes["colourfulness"], v["colorfulness"]),
                    "face": (any(plan.face), (v["face_share"] or 0) > 0),
                    "early_face": (plan.early(plan.face), bool(h["early_face"])),
                    "text": (any(plan.text), v["text_share"] > 0),
                    "early_text": (plan.early(plan.text), bool(h["early_text"])),
                    "hook": (genes["hook_type"], h["hook_type"]),
                    "has_audio": (plan.has_audio, bool(a["has_audio"])),
                    "speech": (plan.speech, a["sound_type"] in ("speech", "mixed")),
                    "music": (plan.has_music, a["sound_type"] in ("music", "mixed")),
                    "lufs": (plan.loudness_lufs, a["loudness_lufs"]),
                    "lead": (plan.lead_silence_s, a["leading_silence_s"]),
                    "tempo": (plan.tempo_bpm, a["tempo_bpm"], plan.has_music and not plan.speech),
                }
            )
    seconds = time.perf_counter() - t0

    def share(key: str) -> float:
        return round(float(np.mean([r[key][0] == r[key][1] for r in rows])), 4)

    lufs = [abs(r["lufs"][0] - r["lufs"][1]) for r in rows if r["lufs"][1] is not None]
    lead = [abs(r["lead"][0] - r["lead"][1]) for r in rows if r["lead"][1] is not None]
    tempo = [abs(r["tempo"][1] / r["tempo"][0] - 1) <= 0.05 for r in rows if r["tempo"][2]]
    return {
        "clips": len(rows),
        "seconds_render_and_extract": round(seconds, 2),
        "cut_count_exact": share("cuts"),
        "brightness_spearman_vs_rendered": _rho(
            [r["brightness"][0] for r in rows], [r["brightness"][2] for r in rows]
        ),
        "brightness_spearman_vs_gene": _rho(
            [r["brightness"][1] for r in rows], [r["brightness"][2] for r in rows]
        ),
        "colourfulness_spearman_vs_rendered": _rho(
            [r["colour"][0] for r in rows], [r["colour"][2] for r in rows]
        ),
        "colourfulness_spearman_vs_gene": _rho(
            [r["colour"][1] for r in rows], [r["colour"][2] for r in rows]
        ),
        "face_presence_accuracy": share("face"),
        "early_face_accuracy": share("early_face"),
        "text_presence_accuracy": share("text"),
        "early_text_accuracy": share("early_text"),
        "hook_type_accuracy_on_clip_text": share("hook"),
        "has_audio_accuracy": share("has_audio"),
        "speech_presence_accuracy": share("speech"),
        "music_presence_accuracy": share("music"),
        "loudness_mae_lu": round(float(np.mean(lufs)), 3) if lufs else None,
        "leading_silence_mae_s": round(float(np.mean(lead)), 3) if lead else None,
        "tempo_within_5pct_music_only": round(float(np.mean(tempo)), 4) if tempo else None,
    }


HOOK_LINES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "hook_lines.csv"


def taxonomy() -> dict[str, Any]:
    """Accuracy on the test split (written after the rules were frozen) with per-type recall
    and every confusion, and on each batch of the dev split (the rules were written on them)."""
    with HOOK_LINES.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    called = [classify_text(r["line"]).hook_type for r in rows]
    test = [(r["hook_type"], c) for r, c in zip(rows, called, strict=True) if r["split"] == "test"]
    right = sum(y == c for y, c in test)
    per_type = {
        y: f"{sum(c == y for t, c in test if t == y)}/{sum(t == y for t, _ in test)}"
        for y in dict.fromkeys(t for t, _ in test)
    }
    batches: dict[str, dict[str, list[bool]]] = {"dev": {}, "test": {}}
    for r, c in zip(rows, called, strict=True):
        batches[r["split"]].setdefault(r["batch"], []).append(c == r["hook_type"])
    return {
        "test_lines": len(test),
        "test_correct": right,
        "test_accuracy": round(right / len(test), 4),
        "test_recall_by_type": per_type,
        "test_confusions": {
            f"{y} -> {c}": n for (y, c), n in sorted(Counter(test).items()) if y != c
        },
        "test_accuracy_by_batch": {
            b: f"{sum(v)}/{len(v)} = {np.mean(v):.4f}" for b, v in batches["test"].items()
        },
        "dev_accuracy_by_batch": {
            b: f"{sum(v)}/{len(v)} = {np.mean(v):.4f}" for b, v in batches["dev"].items()
        },
    }


def speed(repeats: int) -> dict[str, Any]:
    """One core: the process is pinned to one CPU and OpenCV and the decoder use one thread."""
    import cv2

    cpu = sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, {cpu})
    cv2.setNumThreads(1)
    genes = {
        "duration_s": 30.0,
        "cuts_per_10s": 4.0,
        "time_to_first_cut_s": 1.5,
        "brightness": 0.55,
        "colourfulness": 50.0,
        "face_share": 0.5,
        "early_face": 1,
        "text_share": 0.4,
        "has_music": 1,
        "speech_share": 0.7,
        "loudness_lufs": -14.0,
    }
    t0 = time.perf_counter()
    plan = plan_clip(genes, caption="Still struggling with dry skin?", max_duration_s=30, seed=1)
    clip = render_clip(plan, width=1280, height=720, fps=30, grain=5.5)
    render_s = time.perf_counter() - t0
    text = "Still struggling with dry skin?"
    t0 = time.perf_counter()
    dna_service.extract_from_video(clip.data, text)
    cold_s = time.perf_counter() - t0

    def best(fn: Any) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    floor = best(lambda: dna_service.decode(clip.data, skip_nonref=False))
    dna = best(lambda: dna_service.extract_from_video(clip.data, text))
    dna_full = best(lambda: dna_service.extract_from_video(clip.data, text, skip_nonref=False))
    found = dna_service.extract_from_video(clip.data, text)
    return {
        "clip": "30 s 1280x720 30 fps H.264 (x264 veryfast, crf 23, film grain) + AAC mono",
        "clip_bytes": len(clip.data),
        "clip_kbit_per_s": round(len(clip.data) * 8 / 30 / 1000, 1),
        "render_s": round(render_s, 2),
        "cpu": cpu,
        "first_call_s_including_imports": round(cold_s, 3),
        "floor_plain_decode_s": round(floor, 3),
        "dna_s": round(dna, 3),
        "dna_realtime_factor": round(30.0 / dna, 2),
        "dna_over_floor": round(dna / floor, 3),
        "dna_decoding_every_frame_s": round(dna_full, 3),
        "dna_decoding_every_frame_over_floor": round(dna_full / floor, 3),
        "cuts_found": len(found.visual_dna["cut_times_s"]),
        "cuts_rendered": len(plan.cut_times),
    }


def _true_items(
    market: SimulatedMarket, account: str, ads: list[Any]
) -> dict[tuple[str, str], float]:
    """True effect of each gene level on log CTR against the account's average creative, in the
    units the patterns report: hook and aspect levels minus their ad-weighted mean; a numeric
    gene's 'high' half and a binary gene's 'yes' as the mean of its true contribution
    (slope x z - curvature x z^2, the simulator's inverted U included) over the group minus
    its mean over all ads. The face x testimonial interaction is left out (at most 0.05)."""
    effects = market.evaluation.gene_effects(market.evaluation.niche(account))
    genes = [market.evaluation.genes(ad.external_id) for ad in ads]
    out: dict[tuple[str, str], float] = {}
    for name, table in (("hook_type", effects.hook), ("aspect_ratio", effects.aspect)):
        levels = [str(g[name]) for g in genes]
        mean = float(np.mean([table[level] for level in levels]))
        for level in set(levels):
            if levels.count(level) >= 5:
                out[(name, level)] = table[level] - mean
    for k, gene in enumerate(NUMERIC_GENES):
        slope = effects.numeric_per_sd[gene]
        curve = effects.curvature_per_sd2.get(gene, 0.0)
        z = (np.array([float(g[gene]) for g in genes]) - GENE_MEAN[k]) / GENE_SD[k]
        part = slope * z - curve * z**2
        key = "colorfulness" if gene == "colourfulness" else gene
        if gene in ("early_face", "has_music"):
            yes = z > 0
            out[(key, "yes")] = float(part[yes].mean() - part.mean()) if yes.any() else 0.0
        else:
            high = z > np.median(z)
            out[(key, "high")] = float(part[high].mean() - part.mean())
    return out


def why_ads_win(
    seeds: list[int], days: int = 14, top_k: int = 10, campaigns: int = 40
) -> dict[str, Any]:
    """One large account per seed (``campaigns`` x 6 ads); DNA from the observed features the
    platform shows (noisy, 10% of hook types wrong); patterns after ``days`` days."""
    runs = []
    for seed in seeds:
        config = MarketConfig(
            seed=seed, n_accounts=1, campaigns_per_account=campaigns, retention_hours=None
        )
        market = SimulatedMarket(config)
        market.run(24 * days)
        account = market.accounts()[0]
        platform = market.platform(account)
        ads = platform.list_ads()
        totals: dict[str, list[int]] = {ad.external_id: [0, 0, 0, 0] for ad in ads}
        for r in platform.fetch_insights(config.start, config.start + timedelta(days=days)):
            t = totals[r.ad_id]
            t[0] += r.impressions
            t[1] += r.clicks
            t[2] += r.link_clicks
            t[3] += r.conversions
        outcomes = [
            AdOutcome(
                dna_from_features(ad.observed_features, ad.creative.primary_text).genes,
                *totals[ad.external_id],
            )
            for ad in ads
        ]
        found = gene_patterns(outcomes)
        reported = [(e.gene, e.level, e.lift) for e in found.effects]
        gene_order = [g.gene for g in found.genes]
        truth = _true_items(market, account, ads)
        runs.append(
            {
                "seed": seed,
                "niche": market.evaluation.niche(account),
                "ads": len(ads),
                **_judge(reported, gene_order, truth, top_k),
            }
        )
    return {
        "days": days,
        "ads_per_account": 6 * campaigns,
        "dna_from": "observed features (feature noise 0.1 sd, 10% of hook types wrong)",
        "levels_top_k": top_k,
        "genes_top_k": 5,
        "levels_success_rate": round(float(np.mean([r["levels_ok"] for r in runs])), 3),
        "genes_success_rate": round(float(np.mean([r["genes_ok"] for r in runs])), 3),
        "genes_top3_success_rate": round(float(np.mean([r["genes_ok_top3"] for r in runs])), 3),
        "runs": runs,
    }


def _judge(
    reported: list[tuple[str, str, float]],
    gene_order: list[str],
    truth: dict[tuple[str, str], float],
    top_k: int,
) -> dict[str, Any]:
    """Two readings of "the top genes by evidence include the true top-3 by effect, with the
    right sign". Levels: each of the 3 largest true level effects is among the first ``top_k``
    reported levels, same sign. Genes: rank genes by their largest true level effect and the
    reported genes by their first appearance; each true top-3 gene is among the first 5 reported
    genes, and the reported effect of its truly largest level has the right sign."""
    lift = {(g, lv): v for g, lv, v in reported}
    levels = sorted(truth, key=lambda key: -abs(truth[key]))[:3]
    level_ranks = []
    for key in levels:
        rank = next((i + 1 for i, (g, lv, _) in enumerate(reported) if (g, lv) == key), None)
        right = key in lift and np.sign(lift[key]) == np.sign(truth[key])
        level_ranks.append(
            {
                "level": f"{key[0]}={key[1]}",
                "true": round(truth[key], 4),
                "reported": lift.get(key),
                "rank": rank,
                "right_sign": bool(right),
            }
        )
    best: dict[str, tuple[str, str]] = {}
    for key in sorted(truth, key=lambda k: -abs(truth[k])):
        best.setdefault(key[0], key)
    true_genes = list(best)[:3]
    order = gene_order
    gene_ranks = []
    for gene in true_genes:
        key = best[gene]
        right = key in lift and np.sign(lift[key]) == np.sign(truth[key])
        rank = order.index(gene) + 1 if gene in order else None
        gene_ranks.append(
            {
                "gene": gene,
                "top_level": key[1],
                "true": round(truth[key], 4),
                "reported": lift.get(key),
                "gene_rank": rank,
                "right_sign": bool(right),
            }
        )
    return {
        "top_reported": [f"{g}={lv} {v:+.3f}" for g, lv, v in reported[:top_k]],
        "true_top3_levels": level_ranks,
        "levels_ok": all(
            r["rank"] is not None and r["rank"] <= top_k and r["right_sign"] for r in level_ranks
        ),
        "true_top3_genes": gene_ranks,
        "genes_ok": all(
            r["gene_rank"] is not None and r["gene_rank"] <= 5 and r["right_sign"]
            for r in gene_ranks
        ),
        "genes_ok_top3": all(
            r["gene_rank"] is not None and r["gene_rank"] <= 3 and r["right_sign"]
            for r in gene_ranks
        ),
    }


PARTS = ("taxonomy", "recovery", "why", "speed")


def run(quick: bool = False, parts: tuple[str, ...] = PARTS) -> dict[str, Any]:
    """The four figures (or some of them); ``quick`` uses 20 clips, 1 speed repeat and 2
    market seeds of 240 ads instead of 12 seeds of 600."""
    out: dict[str, Any] = {}
    if "taxonomy" in parts:
        out["taxonomy"] = taxonomy()
    if "recovery" in parts:
        out["recovery"] = recovery(20 if quick else 120)
    if "why" in parts:
        seeds = [1, 2] if quick else list(range(1, 13))
        out["why_ads_win"] = why_ads_win(seeds, campaigns=40 if quick else 100)
    if "speed" in parts:
        out["speed_one_core"] = speed(1 if quick else 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help="comma-separated: " + ",".join(PARTS)
    )
    args = parser.parse_args()
    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {sorted(unknown)}")
    print(json.dumps(run(quick=args.quick, parts=parts), indent=2))


if __name__ == "__main__":
    main()
