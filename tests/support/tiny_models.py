"""Tiny speech-to-text architectures and random inputs shared by the model and search tests."""
import torch

TINY_S2T = dict(encoder_layers=2, decoder_layers=2, encoder_embed_dim=32, encoder_ffn_embed_dim=64,
                conv_channels=48, encoder_attention_heads=4, decoder_attention_heads=4)
TINY_BERARD = dict(input_layers="[24, 16]", conv_layers="[(4, 3, 2), (4, 3, 2)]", num_blstm_layers=2, lstm_size=12,
                   decoder_embed_dim=8, decoder_num_layers=2, decoder_hidden_dim=24, attention_dim=10,
                   output_layer_dim=8)


def _speech(bsz=3, frames=37, lengths=(37, 25, 11), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(bsz, frames, 80, generator=g)
    lens = torch.tensor(lengths)
    return x * (torch.arange(frames)[None, :, None] < lens[:, None, None]), lens


def _prev(bsz, length, vocab, seed=1):
    prev = torch.randint(4, vocab, (bsz, length), generator=torch.Generator().manual_seed(seed))
    prev[:, 0] = 2
    return prev


def _params(model):
    return sum(p.numel() for p in model.parameters())


