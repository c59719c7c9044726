"""The ST pipeline: ImitKD for end-to-end speech translation with an NMT expert (Hubert, Sokolov, Riezler,
IWSLT 2023; code HubReb/imitkd_ast, a fairseq fork). Its stages (modules in stages/, st_<name>.py for
`speechkd st-<name>`) wire the shared core and the ST helpers of this package:

  st-prep       audio -> fbank80.zip + fairseq S2T TSVs with src_text; Moses text processing (prepare-rest.sh);
                the expert's fastBPE codes and joined dict; BPE'd text for the NMT expert      (st_prep.py)
  st-train      task asr | nmt | st, criterion from the registry in criteria/                   (st_train.py)
  st-generate   beam search with checkpoint averaging -> hypotheses + fairseq-generate logs      (st_generate.py)
  st-score      detokenised sacreBLEU / chrF++ / TER (eval_script.sh), WER for ASR              (st_score.py)
  st-eval       st-generate + st-score on dev and test in one run (the table runs)              (st_eval.py)
  st-synthetic  ASR transcripts (and expert translations) -> the synthetic-transcript dataset    (st_synthetic.py)

Runs refer to each other by name (resolved as <runs_dir>/<profile>/<name>, see runs.py).
"""
