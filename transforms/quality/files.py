"""The quality measures of work-dir files, read block by block (``measures.measure_quality`` of arrays
gives the same figures): memory for a read block and the stem-overlap window, whatever the song's
length."""

from __future__ import annotations

from typing import Optional, Sequence

from transforms.core import reading, stream
from transforms.quality import blockwise as bw
from transforms.quality.measures import (_mix_measures, _source_fields, leakage_from_energy, overlap_score,
                                         overlap_window, section_spans)


def _blocks(uri: str):
    """A callable that reads ``uri`` block by block each time it is called (the mix is read twice)."""
    def read():
        with stream.open_reader(uri) as reader:
            yield from reader.blocks(int(reading.BLOCK_SECONDS * reader.sample_rate))
    return read


def measure_quality_files(mix_uri: str, vocals_uri: Optional[str] = None, accompaniment_uri: Optional[str] = None,
                          source: Optional[dict] = None, sections: Sequence[dict] = ()) -> dict:
    """:func:`measure_quality` of work-dir files, read block by block: memory for a block and the
    stem-overlap window (120 s of two mono stems), whatever the song's length. The same measures as
    over the whole arrays, up to float rounding in sums."""
    with stream.open_reader(mix_uri) as reader:
        sample_rate, channels, total = reader.sample_rate, reader.channels, reader.num_samples
    if total == 0:
        raise ValueError("decoded mix is empty")
    out = _mix_measures(_blocks(mix_uri), sample_rate, channels, total)
    _source_fields(out, sample_rate, source)
    out.update({"vocal_leakage_db": None, "stem_overlap": None})
    if vocals_uri is None:
        return out
    with stream.open_reader(vocals_uri) as reader:
        if reader.sample_rate != sample_rate:
            raise ValueError(f"vocal stem at {reader.sample_rate} Hz, the mix at {sample_rate} Hz")
        energy = bw.SectionEnergy(section_spans(sections, sample_rate, reader.num_samples))
        for block in reader.blocks(int(reading.BLOCK_SECONDS * sample_rate)):
            energy.add(block.mean(axis=0))
    out["vocal_leakage_db"] = leakage_from_energy(energy.energy, sample_rate)
    if accompaniment_uri is not None:
        n = min(reading.num_samples(vocals_uri), reading.num_samples(accompaniment_uri))
        start, keep = overlap_window(n, sample_rate)
        v = reading.read_span(vocals_uri, start, min(keep, n - start), mono=True)[0]
        a = reading.read_span(accompaniment_uri, start, min(keep, n - start), mono=True)[0]
        out["stem_overlap"] = overlap_score(v, a)
    return out
