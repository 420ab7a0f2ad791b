"""The references a model card cites: only what the run used.

- the seed paper whose setup the run follows: arXiv:2506.18297 (Lion and AdamW for cross-encoder
  reranking) for cross-encoders, arXiv:2506.18535 (fine-tuning embedding models on MS MARCO) for
  embedding models;
- Lion (arXiv:2302.06675) when the run's optimizer was Lion;
- MS MARCO when the run trained or evaluated on MS MARCO data or on TREC DL (whose passages are MS
  MARCO's); TREC DL 2019 / 2020 when it trained or evaluated on that track's queries (by the data
  references in the record: registered names such as ``msmarco-passage/trec-dl-2019/judged``, or
  directories named ``dl19`` / ``dl20``).

:func:`references` returns them in the order above, each with its one-line citation and BibTeX entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hf_rerank.training.record import RunRecord


@dataclass(frozen=True)
class Reference:
    """One cited work: ``citation`` (a Markdown line) and ``bibtex`` (one entry)."""

    citation: str
    bibtex: str


SEED_LION_ADAMW = Reference(
    "Kumar, Pande, Damle (2025). *Comparative Analysis of Lion and AdamW Optimizers for Cross-Encoder Reranking "
    "with MiniLM, GTE, and ModernBERT.* arXiv:2506.18297",
    """\
@misc{kumar2025lion,
  title         = {Comparative Analysis of Lion and AdamW Optimizers for Cross-Encoder
                   Reranking with MiniLM, GTE, and ModernBERT},
  author        = {Shahil Kumar and Manu Pande and Anay Yatin Damle},
  year          = {2025},
  eprint        = {2506.18297},
  archivePrefix = {arXiv},
  primaryClass  = {cs.IR}
}""",
)
SEED_FINE_TUNING = Reference(
    "Pande, Kumar, Damle (2025). *When Fine-Tuning Fails: Lessons from MS MARCO Passage Ranking.* arXiv:2506.18535",
    """\
@misc{pande2025finetuning,
  title         = {When Fine-Tuning Fails: Lessons from MS MARCO Passage Ranking},
  author        = {Manu Pande and Shahil Kumar and Anay Yatin Damle},
  year          = {2025},
  eprint        = {2506.18535},
  archivePrefix = {arXiv},
  primaryClass  = {cs.IR}
}""",
)
LION = Reference(
    "Chen et al. (2023). *Symbolic Discovery of Optimization Algorithms* (Lion). NeurIPS 2023, arXiv:2302.06675",
    """\
@inproceedings{chen2023lion,
  title     = {Symbolic Discovery of Optimization Algorithms},
  author    = {Xiangning Chen and Chen Liang and Da Huang and Esteban Real and Kaiyuan Wang
               and Hieu Pham and Xuanyi Dong and Thang Luong and Cho-Jui Hsieh and Yifeng Lu
               and Quoc V. Le},
  booktitle = {Advances in Neural Information Processing Systems},
  year      = {2023},
  note      = {arXiv:2302.06675}
}""",
)
MS_MARCO = Reference(
    "Bajaj et al. (2016). *MS MARCO: A Human Generated MAchine Reading COmprehension Dataset.* arXiv:1611.09268",
    """\
@misc{bajaj2016msmarco,
  title         = {{MS MARCO}: A Human Generated MAchine Reading COmprehension
                   Dataset},
  author        = {Payal Bajaj and Daniel Campos and Nick Craswell and Li Deng and Jianfeng Gao
                   and Xiaodong Liu and Rangan Majumder and Andrew McNamara and Bhaskar Mitra
                   and Tri Nguyen and Mir Rosenberg and Xia Song and Alina Stoica
                   and Saurabh Tiwary and Tong Wang},
  year          = {2016},
  eprint        = {1611.09268},
  archivePrefix = {arXiv}
}""",
)
TREC_DL_2019 = Reference(
    "Craswell, Mitra, Yilmaz, Campos, Voorhees (2020). *Overview of the TREC 2019 Deep Learning Track.* "
    "arXiv:2003.07820",
    """\
@misc{craswell2020trecdl2019,
  title         = {Overview of the {TREC} 2019 Deep Learning Track},
  author        = {Nick Craswell and Bhaskar Mitra and Emine Yilmaz and Daniel Campos
                   and Ellen M. Voorhees},
  year          = {2020},
  eprint        = {2003.07820},
  archivePrefix = {arXiv}
}""",
)
TREC_DL_2020 = Reference(
    "Craswell, Mitra, Yilmaz, Campos (2021). *Overview of the TREC 2020 Deep Learning Track.* arXiv:2102.07662",
    """\
@misc{craswell2021trecdl2020,
  title         = {Overview of the {TREC} 2020 Deep Learning Track},
  author        = {Nick Craswell and Bhaskar Mitra and Emine Yilmaz and Daniel Campos},
  year          = {2021},
  eprint        = {2102.07662},
  archivePrefix = {arXiv}
}""",
)

TREC_DL_2019_DATA = re.compile(r"trec-dl-2019|\bdl19\b", re.IGNORECASE)
TREC_DL_2020_DATA = re.compile(r"trec-dl-2020|\bdl20\b", re.IGNORECASE)
MS_MARCO_DATA = re.compile(r"ms_?marco", re.IGNORECASE)


def data_references(record: RunRecord) -> list[str]:
    """Every data reference of the run: its training data (several are recorded joined by `` + ``) and
    each evaluation's data and retrieval corpus."""
    data = (record.train_data or "").split(" + ") if record.train_data else []
    for protocol in record.eval_protocol.values():
        data += [protocol.data] if protocol.data else []
        data += protocol.corpus or []
    return data


def references(record: RunRecord) -> list[Reference]:
    """The works ``record``'s card cites (see the module docstring), in citation order."""
    data = data_references(record)
    dl19 = any(TREC_DL_2019_DATA.search(d) for d in data)
    dl20 = any(TREC_DL_2020_DATA.search(d) for d in data)
    ms_marco = dl19 or dl20 or any(MS_MARCO_DATA.search(d) for d in data)
    lion = (record.optimizer or {}).get("name") == "lion"
    return [
        reference
        for reference, cited in (
            (SEED_LION_ADAMW, record.kind == "cross-encoder"),
            (SEED_FINE_TUNING, record.kind == "embedding"),
            (LION, lion),
            (MS_MARCO, ms_marco),
            (TREC_DL_2019, dl19),
            (TREC_DL_2020, dl20),
        )
        if cited
    ]
