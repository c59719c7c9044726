"""Metrics: classification accuracy, WER/CER (fairseq's normalisation, jiwer), BLEU/chrF++/TER (sacreBLEU)."""
