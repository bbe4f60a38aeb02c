# The source site's words in Simplified Chinese ("您").
# Same messages and variables as en.ftl, in the same order (tests/languages.rs checks).
# Chinese has only the plural category "other", so counts are written once, without a
# selector. Terms: code = 口令, submission = 提交, desk = 部门, newsroom = 编辑部,
# inbox = 收件箱, reply = 回复, message = 消息, document/file = 文件, upload = 上传,
# log in = 登录, onion address = .onion 地址, Tor Browser = Tor 浏览器, Safest = “最安全”.
# A space separates Latin letters and digits from Chinese characters.

## How numbers are written in this language (used by the server, not shown alone).
number-group = ,
number-decimal = .
size-bytes = { $n } 字节
size-kb = { $n } KB
size-mb = { $n } MB
size-gb = { $n } GB
size-tb = { $n } TB

## Every page.
site = 安全投递箱
languages = 语言
not-onion = 您当前访问的不是本站的 .onion 地址。为了您的安全，请在 Tor 浏览器中打开 .onion 地址。
onion-is = 本站的 .onion 地址是：
contact = 联系方式：

## The landing page.
landing-title = 向我们安全地发送文件
landing-intro = 这是一个安全投递箱。您无需注册账户，也无需告诉我们您是谁，就可以向我们发送文件和消息。
instructions-title = 发送之前
safety-title = 保护好自己
safety-tor = 请使用 Tor 浏览器，并将安全级别设为“最安全”。
safety-device = 请使用不属于您雇主的设备和网络。
safety-encrypted = 您的文件一到达就会被加密；只有编辑部能读取，而且是在一台从不联网的电脑上读取。
safety-code = 首次提交后，您会得到一个口令。这是回到您与我们对话的唯一途径：任何人都无法找回它。
start = 发送文件或消息
returning = 以前发送过？请用口令登录
retention-title = 本站的保存期限
retention-items = 您发送的内容会在到达 { $days } 天后从本服务器上删除。
retention-pulled = 您发送的内容会在编辑部下载 { $days } 天后从本服务器上删除。
retention-inactive = 如果您连续 { $days } 天没有登录，您的对话将连同编辑部的回复一起被删除，您的口令也将失效。

## The form for documents and a message.
submit-title = 发送文件或消息
desk-legend = 由谁接收？
desk-advice = 只有您选择的部门能阅读您发送的内容，现在和以后都是如此。
message-label = 消息
message-limit = 最多 { $chars } 个字符。
files-label = 文件
files-limit = 最多 { $count } 个文件，总大小不超过 { $size }。
send = 发送

## The page that shows a new source its code.
code-title = 谢谢。请保存好这个口令。
code-paper = 请把这个口令写在纸上，存放在安全的地方，远离您的电子设备。
code-back = 凭它，您以后可以回来阅读我们的回复，并继续发送内容。
code-once = 它只显示这一次。任何人，包括我们，都无法找回它。
code-english = 无论本站以何种语言显示，口令都由英文单词组成：请完全照原样书写这些单词。
go-inbox = 前往收件箱

## Logging in.
login-title = 用口令登录
code-label = 您的口令（8 个单词）
code-hint = 您收到的 8 个英文单词，用空格分隔。
log-in = 登录
login-failed-title = 未能登录
login-failed = 这个口令无法打开任何内容。请检查单词，然后重试。

## The inbox.
inbox-title = 收件箱
received = 已于 { $day } 收到：{ $what }。
received-messages = { $n } 条消息
received-files = { $n } 个文件
received-both = { $messages }和 { $files }
received-again = 已安全送达，无需重新发送。
your-desk = 您正在联系的部门：
new-code-title = 您的新口令
new-code-advice = 请现在就写下这个新口令。在您于下方确认之前，旧口令仍然有效；确认之后，只有新口令能打开您的收件箱。
new-code-confirm = 我已写下新口令
replies-title = 编辑部的回复
no-replies = 还没有回复。请稍后再来查看。
reply-unreadable = 无法打开这条回复。
delete-reply = 删除这条回复
follow-up-title = 继续发送
log-out = 退出登录
closed-title = 对话已关闭
closed = 编辑部已关闭此对话，并将其连同回复一起从服务器上删除。您的口令已失效。如果您想发送新的内容，请开始一次新的提交：您会得到一个新口令。

## Refusals and errors.
back = 返回首页
nothing-kept = 此次尝试的内容均未保存。
error-label = 错误：
form-expired-title = 表单已过期
form-expired = 此表单不是从本站发送的，或者已经过期。请返回，刷新页面后重试。
form-unreadable-title = 无法读取表单
form-unreadable = 无法读取表单。请返回后重试。
too-slow-title = 超时
too-slow = 表单传送时间过长。请返回后重试。
too-large-title = 内容过大
too-large = 您提交的内容超过了 { $limit } 的上限。请减少文件数量或改用更小的文件，或分多次提交。
too-many-files-title = 文件过多
too-many-files = 您一次最多只能发送 { $count } 个文件。其余文件请另行提交。
message-too-long-title = 消息过长
message-too-long = 一条消息最多 { $chars } 个字符。较长的文字请放在文件中。
message-not-text-title = 无法读取消息
message-not-text = 无法将此消息作为文本读取。请改为放在文件中。
empty-title = 没有可发送的内容
empty = 请写一条消息，或至少选择一个文件。
upload-failed-title = 上传失败
upload-failed = 上传的内容未能完整读取。请重试。
busy-title = 繁忙
busy-server = 服务器当前繁忙。请过几分钟再试。
busy-uploads = 当前正在进行的上传很多。请过几分钟再试。
busy-rate = 本站当前收到的提交很多，因此短时间内不再接收新的提交。没有保存任何内容。请过几分钟再试。
no-space-title = 空间不足
no-space-server = 服务器当前磁盘空间不足。请稍后再试。
no-space-uploads = 服务器当前没有空间接收新的上传。请稍后再试。
gone-title = 对话已关闭
gone = 编辑部已关闭此对话。如果您想继续发送内容，请开始一次新的提交。
no-desk-title = 请选择接收部门
no-desk = 请选择您这次提交要发给哪个部门。没有发送任何内容。
unknown-desk-title = 未知部门
unknown-desk = 您选择的部门在这里不存在（或已不存在）。请刷新页面后重新选择。没有发送任何内容。
desk-closed-title = 部门已关闭
desk-closed = 与您联系的部门已不再接收提交。您仍然可以登录阅读它的回复。没有发送任何内容。
server-error-title = 服务器错误
server-error = 我们这边出了问题。请稍后再试。
session-ended-title = 会话已结束
session-ended = 您的会话已结束，因此没有发送任何内容。请用口令重新登录，然后再发送您的文件。
not-found-title = 页面不存在
not-found = 此地址没有页面。
no-reply-title = 未找到
no-reply = 没有这条回复。
not-allowed-title = 不允许
not-allowed = 无法以这种方式使用此页面。
