"""The SLU pipeline of Kim et al., "Two-stage Textual Knowledge Distillation for End-to-End Spoken Language
Understanding" (ICASSP 2021; code clovaai/textual-kd-slu), as `speechkd` stages. Each stage module has a
`Config` and `run(cfg)`; the modules only wire the shared core (models, losses, trainer, runs) together.

    slu-units          wav -> discrete units ("a-b" tokens) + the seed's manifests      units_stage.py
    slu-mlm-pretrain   RoBERTa MLM pre-training (embedded VQ-BERT and text RoBERTa)      mlm_pretrain.py
    slu-text-finetune  the text teacher: RoBERTa <s> -> Linear on transcripts           text_finetune.py
    slu-pt-kd          VQ-BERT further pre-trained: span MLM + <s> matched to text <s>   pt_kd.py
    slu-am-pretrain    DeepSpeech2 + character CTC on the frozen VQ-BERT                 am_pretrain.py
    slu-finetune       VQ-BERT -> DS2 -> max-pool -> Linear; FT-KD, AM-PT, DA, 10 %      finetune.py
    slu-infer          a saved slu-finetune run classifies wav files                    infer.py
"""
