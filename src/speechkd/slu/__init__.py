"""The SLU pipeline of Kim et al., "Two-stage Textual Knowledge Distillation for End-to-End Spoken Language
Understanding" (ICASSP 2021; code clovaai/textual-kd-slu), as `speechkd` stages. The stage modules are in stages/ (slu_<name>.py for
`speechkd slu-<name>`); this package holds the SLU helpers they share (corpus, batching, encoders, models).

    slu-units          wav -> discrete units ("a-b" tokens) + the seed's manifests      stages/slu_units.py
    slu-mlm-pretrain   RoBERTa MLM pre-training (embedded VQ-BERT and text RoBERTa)      stages/slu_mlm_pretrain.py
    slu-text-finetune  the text teacher: RoBERTa <s> -> Linear on transcripts           stages/slu_text_finetune.py
    slu-pt-kd          VQ-BERT further pre-trained: span MLM + <s> matched to text <s>   stages/slu_pt_kd.py
    slu-am-pretrain    DeepSpeech2 + character CTC on the frozen VQ-BERT                 stages/slu_am_pretrain.py
    slu-finetune       VQ-BERT -> DS2 -> max-pool -> Linear; FT-KD, AM-PT, DA, 10 %      stages/slu_finetune.py
    slu-infer          a saved slu-finetune run classifies wav files                    stages/slu_infer.py
"""
