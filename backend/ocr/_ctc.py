"""The Chinese recogniser's own odds for a given text: RapidOCR's line model gives, for
each slice of a text line, a probability over its characters; the CTC forward pass sums
them into the probability that the line says exactly `text`. We did not print another
system's form, so we cannot verify a cell by rendering it; but we can ask whether the
record's text explains the cell about as well as the best reading does. A reading that
differs by a glyph the model hesitated over is then no difference, and a closed choice
(是/否) is the option the model finds most likely.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._ocr import _rapid, text_lines

_NEG = -1e9
MIN_RATIO = 3.0  # the narrowest line image (width : height) the model is given


@dataclass(frozen=True, slots=True)
class LineOdds:
    """Per-slice log-probabilities of one cell's text, lines joined top to bottom."""

    logp: np.ndarray  # T × C
    index: dict[str, int]  # character → column
    text: str  # the best path, decoded
    score: float  # mean probability of the best path's characters (RapidOCR's score)

    def best_logp(self) -> float:
        return self.logp_of(self.text)

    def logp_of(self, text: str) -> float:
        """log P(the cell says `text`) under CTC; -inf-ish for an unknown character."""
        labels = []
        for ch in text:
            if ch.isspace():
                continue
            i = self.index.get(ch)
            if i is None:
                return _NEG
            labels.append(i)
        return _ctc_logp(self.logp, labels)


def _ctc_logp(logp: np.ndarray, labels: list[int]) -> float:
    t_len = logp.shape[0]
    ext = [0]
    for lab in labels:
        ext += [lab, 0]
    s_len = len(ext)
    ext_arr = np.array(ext)
    # Where a skip over a blank is allowed: label differs from the one two back.
    skip = np.zeros(s_len, bool)
    skip[2:] = (ext_arr[2:] != 0) & (ext_arr[2:] != ext_arr[:-2])
    alpha = np.full(s_len, _NEG)
    alpha[0] = logp[0, 0]
    if s_len > 1:
        alpha[1] = logp[0, ext[1]]
    for t in range(1, t_len):
        prev = alpha
        a1 = np.concatenate(([_NEG], prev[:-1]))
        a2 = np.where(skip, np.concatenate(([_NEG, _NEG], prev[:-2])), _NEG)
        alpha = np.logaddexp(np.logaddexp(prev, a1), a2) + logp[t, ext_arr]
    if s_len == 1:
        return float(alpha[-1])
    return float(np.logaddexp(alpha[-1], alpha[-2]))


def cell_odds(cell: np.ndarray, min_gap: int = 4) -> LineOdds | None:
    """Run the line model over each line of ink in a paper-white greyscale cell."""
    engine = _rapid().text_rec
    decoder = engine.postprocess_op
    chunks, texts, scores = [], [], []
    for line in text_lines(cell, min_gap):
        rgb = np.ascontiguousarray(np.repeat(line[:, :, None], 3, axis=2))
        h, w = rgb.shape[:2]
        # The line at its own width (RapidOCR pads every line to 320 × 48 first, which
        # costs a short value, 男 or 2019-09, four times its own reading).
        norm = engine.resize_norm_img(rgb, max(MIN_RATIO, w / h))[None].astype(np.float32)
        probs = engine.session(norm)[0][0]  # T × C, softmax
        chunks.append(np.log(np.maximum(probs, 1e-12)))
        (text, score), *_ = decoder(probs[None])
        texts.append(text)
        if text:
            scores.append(score)
    if not chunks:
        return None
    return LineOdds(
        np.concatenate(chunks),
        decoder.dict,
        "".join(texts),
        float(np.mean(scores)) if scores else 0.0,
    )
