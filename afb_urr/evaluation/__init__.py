"""DAVIS J&F evaluation: the numbers of the DAVIS 2017 package, faster.

metrics  J, F, boundary maps, the disk, mean / recall / decay
davis    reading DAVIS-2017 / long-video ground truth and a results folder, scoring it
report   the package's CSV files, printed tables, a summary PNG
"""
from .davis import (EvaluationResult, ObjectScores, ResultsError, SequenceSpec, davis_sequences,
                    evaluate_davis, evaluate_long_video, evaluate_specs, long_video_sequences)
from .metrics import (BOUND_TH, boundary_map, bound_pixels, db_statistics, disk, f_measure, frame_scores,
                      j_measure, sequence_scores)
from ..io import MaskFormatError, read_index_png
from .report import format_tables, plot_summary, write_csvs

__all__ = [
    "BOUND_TH", "EvaluationResult", "MaskFormatError", "ObjectScores", "ResultsError", "SequenceSpec",
    "bound_pixels", "boundary_map", "davis_sequences", "db_statistics", "disk", "evaluate_davis",
    "evaluate_long_video", "evaluate_specs", "f_measure", "format_tables", "frame_scores", "j_measure",
    "long_video_sequences", "plot_summary", "read_index_png", "sequence_scores", "write_csvs",
]
