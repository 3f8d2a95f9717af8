"""English and 简体中文: reply text by ``interaction.locale``, command names through `app_commands.Translator`.

Two separate mechanisms, as Discord has them:
- Command and option names and descriptions are translated once, at sync time, by `MuseTranslator`; Discord
  then shows each user the names in their client language.
- Reply text is chosen per interaction from ``interaction.locale`` with `t`.
"""

from __future__ import annotations

import discord
from discord import app_commands

ZH = "zh"
EN = "en"

MESSAGES: dict[str, dict[str, str]] = {
    # ---- queue -----------------------------------------------------------------------------------------------
    "queued": {EN: "⏳ You're in the queue: {ahead} request(s) ahead of you.",
               ZH: "⏳ 已排队：前面还有 {ahead} 个请求。"},
    "busy_full": {EN: "Muse is busy right now ({limit} requests waiting). Please try again in a minute.",
                  ZH: "Muse 现在很忙（已有 {limit} 个请求在排队），请过一分钟再试。"},
    "busy_user": {EN: "You already have {limit} requests waiting. Please wait for one to finish first.",
                  ZH: "你已经有 {limit} 个请求在排队了，请等其中一个完成后再试。"},
    # ---- bad input ------------------------------------------------------------------------------------------
    "seed_range": {EN: "The seed must be a whole number from 0 to {max}; you gave {seed}.",
                   ZH: "种子必须是 0 到 {max} 之间的整数；你给的是 {seed}。"},
    "unknown_theme": {EN: "I don't know the theme “{theme}”. Pick one of: {themes}.",
                      ZH: "我不认识主题“{theme}”。请从这些里选一个：{themes}。"},
    "range": {EN: "`{name}` must be between {lo} and {hi}; you gave {value}.",
              ZH: "`{name}` 必须在 {lo} 到 {hi} 之间；你给的是 {value}。"},
    "text_empty": {EN: "`{name}` is empty. Please write a few words.",
                   ZH: "`{name}` 是空的，请写几个字。"},
    "text_long": {EN: "`{name}` is {n} characters long; please keep it to {limit} or fewer.",
                  ZH: "`{name}` 有 {n} 个字符，请不要超过 {limit} 个。"},
    "need_one": {EN: "Give `{name}` either an emoji or an image attachment (exactly one of the two).",
                 ZH: "`{name}` 请给一个表情符号或一张图片附件（二选一）。"},
    "not_image": {EN: "“{name}” is not an image I can read. Attach a PNG, JPEG, GIF or WebP picture.",
                  ZH: "“{name}” 不是我能读取的图片。请附上 PNG、JPEG、GIF 或 WebP 图片。"},
    "too_big": {EN: "“{name}” is {size:.1f} MB; the limit is {limit:.0f} MB. Please attach a smaller picture.",
                ZH: "“{name}” 有 {size:.1f} MB，上限是 {limit:.0f} MB。请换一张小一点的图片。"},
    "too_many_pixels": {EN: "“{name}” is {size} pixels, more than I can read ({mp:.1f} megapixels at most). "
                            "Please attach a smaller picture.",
                        ZH: "“{name}” 有 {size} 像素，超过了我能读取的上限（{mp:.1f} 百万像素）。请换一张小一点的图片。"},
    "unknown_emoji": {EN: "“{text}” is not an emoji I can draw. Use one standard emoji, like 🐱.",
                      ZH: "我画不出“{text}”。请用一个标准表情符号，比如 🐱。"},
    "bad_text": {EN: "I can't use that text: {detail}", ZH: "这段文字用不了：{detail}"},
    "cooldown": {EN: "Slow down a little: you can use this again in {s:.0f} s.",
                 ZH: "慢一点：{s:.0f} 秒后才能再用。"},
    "dm": {EN: "Please use me in a server: commands are switched off in DMs here.",
           ZH: "请在服务器里使用我：这里的私信中不能使用命令。"},
    "unexpected": {EN: "Something went wrong on my side. Error id `{id}`: tell the server admin if it keeps happening.",
                   ZH: "我这边出错了。错误编号 `{id}`：如果一直出现，请告诉服务器管理员。"},
    "model_missing": {EN: "The {model} model isn't installed on this Muse yet. Ask the admin to train it (`muse train`).",
                      ZH: "这个 Muse 还没有安装 {model} 模型。请让管理员先训练（`muse train`）。"},
    "not_muse": {EN: "That message isn't a Muse result, so it has no details.",
                 ZH: "那条消息不是 Muse 的作品，没有详情。"},
    "stale": {EN: "I can't rebuild this result any more: {detail}",
              ZH: "这个作品已经无法重建：{detail}"},
    "too_deep": {EN: "Variations go at most {n} generations deep. Start a fresh /image from here.",
                 ZH: "变体最多 {n} 代。请从这里重新用 /image 开始。"},
    "not_image_result": {EN: "Only an image result can be morphed from.", ZH: "只能从图片作品开始变形。"},
    "text_chars": {EN: "`{name}` contains characters I can't read (broken emoji or control characters). "
                       "Please retype it.",
                   ZH: "`{name}` 里有我读不了的字符（损坏的表情符号或控制字符），请重新输入。"},
    "attachment_gone": {EN: "I couldn't download “{name}” from Discord (it may have been deleted or expired). "
                            "Please attach it again.",
                        ZH: "我没能从 Discord 下载“{name}”（它可能已被删除或过期），请重新附上。"},
    "bad_option": {EN: "`{name}` got “{value}”, which is not {kind}. Please pick a value from the list Discord shows.",
                   ZH: "`{name}` 收到了“{value}”，这不是{kind}。请从 Discord 显示的选项里选择。"},
    "stale_command": {EN: "This command has changed since your Discord app loaded it{detail}. Reload Discord "
                          "(Ctrl+R, or restart the app) and try again.",
                      ZH: "自从你的 Discord 加载这个命令以来，它已经更新了{detail}。请刷新 Discord（Ctrl+R，或重启应用）后再试。"},
    "gone_command": {EN: "Muse no longer has `/{name}`; Discord may show old commands for a while. Reload Discord "
                         "(Ctrl+R) to see the current ones.",
                     ZH: "Muse 已经没有 `/{name}` 这个命令了；Discord 可能会暂时显示旧命令。请刷新 Discord（Ctrl+R）查看现在的命令。"},
    "old_button": {EN: "This button is from an older version of Muse and no longer works. Run the command again "
                       "for a fresh result.",
                   ZH: "这个按钮来自旧版本的 Muse，已经不能用了。请重新运行命令。"},
    "old_form": {EN: "This form has expired (it came from an older version of Muse). Please open it again.",
                 ZH: "这个表单已过期（来自旧版本的 Muse），请重新打开。"},
    # ---- results ---------------------------------------------------------------------------------------------
    "image_title": {EN: "🎨 {theme}", ZH: "🎨 {theme}"},
    "variation_title": {EN: "🎨 {theme}: variations of V{cell}", ZH: "🎨 {theme}：V{cell} 的变体"},
    "poem_title": {EN: "📜 A poem", ZH: "📜 一首诗"},
    "poem_var_title": {EN: "📜 A variation", ZH: "📜 一首变体诗"},
    "morph_title": {EN: "🌀 Morph", ZH: "🌀 变形"},
    "morph_poem_title": {EN: "🌀 From one line to another", ZH: "🌀 从一句到另一句"},
    "details_title": {EN: "🔎 Muse details", ZH: "🔎 Muse 详情"},
    "f_theme": {EN: "Theme", ZH: "主题"},
    "f_seed": {EN: "Seed", ZH: "种子"},
    "f_count": {EN: "Count", ZH: "数量"},
    "f_model": {EN: "Model", ZH: "模型"},
    "f_parents": {EN: "Parents", ZH: "来源"},
    "f_lang": {EN: "Language", ZH: "语言"},
    "f_temperature": {EN: "Temperature", ZH: "温度"},
    "f_frames": {EN: "Frames", ZH: "帧数"},
    "f_steps": {EN: "Steps", ZH: "步数"},
    "f_from": {EN: "From", ZH: "起点"},
    "f_to": {EN: "To", ZH: "终点"},
    "f_kind": {EN: "Kind", ZH: "类型"},
    "f_reproduce": {EN: "Reproduce", ZH: "复现"},
    "none": {EN: "none (an original)", ZH: "无（原创）"},
    "b_reroll": {EN: "Reroll", ZH: "重抽"},
    "b_morph": {EN: "Morph from here", ZH: "从这里变形"},
    "morph_modal": {EN: "Morph from this result", ZH: "从这个作品变形"},
    "morph_modal_cell": {EN: "Which cell (1-4)", ZH: "第几格（1-4）"},
    "morph_modal_to": {EN: "Morph to (an emoji)", ZH: "变成（一个表情符号）"},
    # ---- /muse: models, feedback, stats ----------------------------------------------------------------------
    "admin_only": {EN: "Only server administrators (or the owner of this Muse) can do that.",
                   ZH: "只有服务器管理员（或这个 Muse 的主人）才能这样做。"},
    "models_owner_only": {EN: "The models are shared by every server this Muse is in, so only the owner of this Muse "
                              "{home}can train, roll back or inspect them.",
                          ZH: "这些模型由这个 Muse 所在的所有服务器共用，所以只有这个 Muse 的主人{home}才能训练、回滚或查看它们。"},
    "models_home": {EN: "and the administrators of its home server ", ZH: "和它主服务器的管理员"},
    "store_off": {EN: "Feedback isn't being recorded on this Muse right now (its database could not be opened). "
                      "The admin can find out why in the log.",
                  ZH: "这个 Muse 现在没有记录反馈（数据库打不开）。管理员可以在日志里查看原因。"},
    "trainer_off": {EN: "The trainer is switched off on this Muse (`[trainer] enabled = false`), so models are "
                        "not fine-tuned from feedback.",
                    ZH: "这个 Muse 的训练器已关闭（`[trainer] enabled = false`），不会根据反馈微调模型。"},
    "unknown_model": {EN: "I don't know the model “{model}”. Pick one of: {models}.",
                      ZH: "我不认识模型“{model}”。请从这些里选一个：{models}。"},
    "status_title": {EN: "🧠 Muse's models", ZH: "🧠 Muse 的模型"},
    "status_served": {EN: "Serving **{version}**", ZH: "正在使用 **{version}**"},
    "status_versions": {EN: "Versions kept: {versions}", ZH: "保留的版本：{versions}"},
    "status_counts": {EN: "Feedback: {results} results · 👍 {likes} · 👎 {dislikes} · {voters} voters · "
                          "{signals} button signals",
                      ZH: "反馈：{results} 个作品 · 👍 {likes} · 👎 {dislikes} · {voters} 人投票 · {signals} 次按钮信号"},
    "status_last_run": {EN: "Last run: {when}, {trigger}: **{outcome}**{reason}",
                        ZH: "上次训练：{when}，{trigger}：**{outcome}**{reason}"},
    "status_no_run": {EN: "Last run: never", ZH: "上次训练：从未"},
    "status_rates": {EN: "Like rate: {rates}", ZH: "好评率：{rates}"},
    "status_no_votes": {EN: "no votes yet", ZH: "还没有投票"},
    "outcome_promoted": {EN: "promoted", ZH: "已上线"},
    "outcome_refused": {EN: "refused by the gate", ZH: "未通过评估"},
    "outcome_failed": {EN: "failed", ZH: "失败"},
    "outcome_skipped": {EN: "skipped", ZH: "跳过"},
    "outcome_running": {EN: "running", ZH: "进行中"},
    "outcome_interrupted": {EN: "interrupted (Muse stopped during the run)", ZH: "已中断（训练时 Muse 停止了）"},
    "train_promoted": {EN: "✅ **{model}**: promoted **{version}**, trained on {n} votes. Now serving {served}.",
                       ZH: "✅ **{model}**：新版本 **{version}** 已上线（用了 {n} 条反馈）。现在使用 {served}。"},
    "train_refused": {EN: "🛑 **{model}**: the candidate {version} was not promoted: {reason}. Still serving {served}.",
                      ZH: "🛑 **{model}**：候选版本 {version} 未上线：{reason}。仍在使用 {served}。"},
    "train_failed": {EN: "❌ **{model}**: training failed: {reason}. Still serving {served}.",
                     ZH: "❌ **{model}**：训练失败：{reason}。仍在使用 {served}。"},
    "train_skipped": {EN: "⏭️ **{model}**: nothing was trained: {reason}. Still serving {served}.",
                      ZH: "⏭️ **{model}**：没有训练：{reason}。仍在使用 {served}。"},
    "train_interrupted": {EN: "⏹️ **{model}**: training was interrupted because Muse is stopping. Still serving {served}.",
                          ZH: "⏹️ **{model}**：Muse 正在停止，训练被中断。仍在使用 {served}。"},
    "train_error": {EN: "❌ **{model}**: {detail}", ZH: "❌ **{model}**：{detail}"},
    "f_metrics": {EN: "Metrics", ZH: "指标"},
    "rollback_done": {EN: "↩️ **{model}**: serving **{version}** again.", ZH: "↩️ **{model}**：已改回使用 **{version}**。"},
    "rollback_none": {EN: "**{model}** has no earlier version to roll back to: it is still serving {served}.",
                      ZH: "**{model}** 没有可以回滚到的旧版本，仍在使用 {served}。"},
    "export_done": {EN: "📄 {n} votes and button signals of this server.", ZH: "📄 本服务器的 {n} 条投票和按钮信号。"},
    "export_all": {EN: "📄 {n} votes and button signals, all servers.", ZH: "📄 所有服务器的 {n} 条投票和按钮信号。"},
    "stats_title": {EN: "📊 You and Muse", ZH: "📊 你和 Muse"},
    "stats_results": {EN: "Results you asked for", ZH: "你请求的作品"},
    "stats_votes": {EN: "Votes you gave", ZH: "你投的票"},
    "stats_likes": {EN: "Likes your results got", ZH: "你的作品收到的赞"},
    "stats_favourites": {EN: "⭐ This server's favourites", ZH: "⭐ 本服务器最受欢迎的作品"},
    "stats_no_favourites": {EN: "None yet: react 👍 on a result you like.", ZH: "还没有：给你喜欢的作品点个 👍 吧。"},
    "stats_hint": {EN: "React {positive} to like a result and {negative} to dislike it: Muse learns from it.",
                   ZH: "用 {positive} 给作品点赞，用 {negative} 点踩：Muse 会从中学习。"},
    "kind_image": {EN: "image", ZH: "图片"},
    "kind_poem": {EN: "poem", ZH: "诗"},
    "kind_morph": {EN: "morph", ZH: "变形"},
    "kind_morph-poem": {EN: "verse morph", ZH: "诗句变形"},
    "jump": {EN: "open", ZH: "查看"},
}


def lang_of(locale: discord.Locale | str | None) -> str:
    """'zh' for Chinese (zh-CN, and zh-TW rather than English), else 'en'."""
    value = locale.value if isinstance(locale, discord.Locale) else str(locale or "")
    return ZH if value.startswith("zh") else EN


def t(locale: discord.Locale | str | None, key: str, **kw) -> str:
    entry = MESSAGES[key]
    return entry.get(lang_of(locale), entry[EN]).format(**kw)


# Command and option names / descriptions for `MuseTranslator`, keyed by the English string. Names must be
# lower case, without spaces (context-menu names may have both).
ZH_COMMANDS: dict[str, str] = {
    "image": "图片",
    "Draw a grid of new images in a theme": "按主题画一组新图片",
    "theme": "主题",
    "What to draw": "画什么",
    "count": "数量",
    "How many images (1-4)": "几张图（1-4）",
    "seed": "种子",
    "The same seed draws the same images (0-4294967295); empty = random": "同一个种子画出同样的图（0-4294967295）；留空则随机",
    "poem": "诗",
    "Write a short poem": "写一首短诗",
    "lang": "语言",
    "English or Chinese": "英文或中文",
    "A few words to write about": "写关于什么的几个词",
    "temperature": "温度",
    "Lower is calmer, higher is wilder (0.2-1.5)": "越低越平稳，越高越狂野（0.2-1.5）",
    "The same seed writes the same poem; empty = random": "同一个种子写出同一首诗；留空则随机",
    "interpolate": "插值",
    "Morph one thing into another": "把一样东西变成另一样",
    "Morph one image into another (animated GIF + strip)": "把一张图变成另一张（动图 + 帧条）",
    "from": "起点",
    "An emoji to start from": "起点的表情符号",
    "to": "终点",
    "An emoji to end at": "终点的表情符号",
    "from_image": "起点图片",
    "Or an image to start from": "或者一张起点图片",
    "to_image": "终点图片",
    "Or an image to end at": "或者一张终点图片",
    "frames": "帧数",
    "Frames in the animation (2-24)": "动画的帧数（2-24）",
    "Morph one line of verse into another": "把一句诗变成另一句",
    "The first line": "第一句",
    "The last line": "最后一句",
    "steps": "步数",
    "Lines from first to last (2-10)": "从第一句到最后一句的行数（2-10）",
    "Muse: details": "Muse：详情",
    "Muse: morph from here": "Muse：从这里变形",
    "English": "英文",
    "Chinese": "中文",
    "Muse's models, feedback and your stats": "Muse 的模型、反馈和你的统计",
    "model": "模型",
    "The models and their training (admins)": "模型及其训练（管理员）",
    "status": "状态",
    "Versions, feedback and trainer runs of every model (admins)": "每个模型的版本、反馈和训练记录（管理员）",
    "train": "训练",
    "Fine-tune a model on the feedback now (admins)": "现在用反馈微调一个模型（管理员）",
    "rollback": "回滚",
    "Serve a model's previous version again (admins)": "改回使用模型的上一个版本（管理员）",
    "kind": "模型名",
    "Which model": "哪个模型",
    "feedback": "反馈",
    "The votes Muse has recorded (admins)": "Muse 记录的投票（管理员）",
    "export": "导出",
    "Download this server's votes as CSV (admins)": "把本服务器的投票下载为 CSV（管理员）",
    "stats": "统计",
    "Your contribution, and this server's favourite results": "你的贡献，以及本服务器最受欢迎的作品",
}


class MuseTranslator(app_commands.Translator):
    """Translates command names and descriptions into 简体中文 at sync time."""

    async def translate(self, string: app_commands.locale_str, locale: discord.Locale,
                        context: app_commands.TranslationContextTypes) -> str | None:
        if locale is discord.Locale.chinese:
            return ZH_COMMANDS.get(string.message)
        return None
