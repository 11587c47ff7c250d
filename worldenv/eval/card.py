"""The model card of a bundle, written from its metadata and its last evaluation:
every number in it comes from the command recorded beside it."""


def render_card(metadata: dict) -> str:
    scene = metadata.get("scene", "?")
    lines = [
        f"# worldenv {scene} world model",
        "",
        "Action-conditioned latent video diffusion world model of the MuJoCo scene "
        f"`worldenv/{scene.capitalize()}-v0` (a frame tokenizer, a block-causal flow-matching "
        "teacher"
        + (", few-step students distilled from it" if any(k.startswith("student_") for k in metadata) else "")
        + ", and a state probe used only for evaluation).",
        "",
    ]
    students = sorted(key for key in metadata if key.startswith("student_") and key.endswith("_training"))
    for part in ("tokenizer_training", "teacher_training", "probe_training", *students):
        info = metadata.get(part)
        if not info:
            continue
        dataset = info.get("dataset", {})
        lines += [
            f"## {part.replace('_', ' ')}",
            "",
            f"- command: `{info.get('command', '?')}`",
            f"- dataset: `{dataset.get('path', '?')}` (manifest sha256 {dataset.get('manifest_sha256', '?')[:16]}..., "
            f"last {dataset.get('held_out_episodes', '?')} episodes held out)",
            *(
                f"- more training data: `{extra['path']}` (manifest sha256 {extra['manifest_sha256'][:16]}..., all episodes)"
                for extra in dataset.get("extra", [])
            ),
            *(
                [
                    f"- started from: the teacher of `{info['init_from']['path']}` "
                    f"(sha256 {info['init_from']['teacher_sha256'][:16]}...)"
                ]
                if "init_from" in info
                else []
            ),
            f"- steps: {info.get('steps', '?')}, wall time {info.get('train_seconds', '?')} s, "
            f"{info.get('processes', 1)} process(es) x {info.get('threads', '?')} threads",
            f"- hardware: {info.get('hardware', '?')}",
        ]
        final = info.get("final_metrics")
        if final:
            lines.append(
                "- last logged: "
                + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in final.items() if k != "lr")
            )
        lines.append("")
    from worldenv import campaign

    ledger = campaign.stages(metadata)
    if ledger:
        lines += [
            "## Training campaign",
            "",
            f"Every stage that trained a component of this bundle or of the bundles it was fine-tuned from, "
            f"in order: {campaign.total_cpu_hours(ledger):.2f} CPU-hours in all (est.: wall time x threads, "
            "recorded before CPU time was).",
            "",
            campaign.ledger_table(ledger),
            "",
        ]
    serving = metadata.get("serving")
    if serving:
        lines += [
            "## What the dream uses",
            "",
            f"`{serving['model']}` with {serving['sampling_steps']} sampling step(s) per frame"
            + (f" and action guidance {serving['action_guidance']:g}" if serving.get("action_guidance", 1.0) != 1.0 else "")
            + (", each frame committed to the cache re-encoded" if serving.get("commit") == "frame" else "")
            + ", chosen from this "
            f"comparison (`{serving['command']}`):",
            "",
            serving["comparison"],
            "",
        ]
    contexts = metadata.get("contexts")
    if contexts:
        lines += [
            "## Start contexts",
            "",
            f"{contexts['count']} real MuJoCo starts of {contexts['length']} frames each under the "
            f"`{contexts['policy']}` exploration policy (episode seeds from {contexts['seed']}), what "
            f"`DiffusionWorld-v0`'s `reset(seed=...)` draws from: `{contexts.get('command', '?')}`",
            "",
        ]
    evaluation = metadata.get("evaluation")
    if evaluation:
        from worldenv.eval.evaluate import summary_table

        lines += [
            "## Evaluation against MuJoCo",
            "",
            f"`{evaluation['command']}` ({evaluation.get('date', '?')}):",
            "",
            summary_table(evaluation["report"]),
            "",
        ]
    memory = metadata.get("memory_evaluation")
    if memory:
        lines += [
            "## Long-term memory: revisits",
            "",
            f"`{memory['command']}` ({memory.get('date', '?')}):",
            "",
            memory["table"],
            "",
        ]
    return "\n".join(lines)
