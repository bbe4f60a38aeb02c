# The source site's words in Persian (Farsi, right to left, "شما").
# Same messages and variables as en.ftl, in the same order (tests/languages.rs checks).
# A Persian noun after a number stays singular, so counts are written once, without a
# selector. Digits are Western (ASCII), as the server writes them. Zero-width
# non-joiners (U+200C) are used as Persian spelling requires (می‌شود، فایل‌ها).
# Terms: code = کد, submission = ارسال, desk = بخش, newsroom = تحریریه,
# inbox = صندوق ورودی, reply = پاسخ, conversation = گفت‌وگو, upload = بارگذاری,
# log in = ورود / وارد شوید, onion address = آدرس پیازی (onion), Tor Browser = مرورگر تور,
# Safest = «ایمن‌ترین».

## How numbers are written in this language (used by the server, not shown alone).
number-group = ,
number-decimal = .
size-bytes = { $n } بایت
size-kb = { $n } کیلوبایت
size-mb = { $n } مگابایت
size-gb = { $n } گیگابایت
size-tb = { $n } ترابایت

## Every page.
site = صندوق امن
languages = زبان‌ها
not-onion = شما از آدرس پیازی (onion) این سایت استفاده نمی‌کنید. برای امنیت خودتان، آدرس پیازی را در مرورگر تور باز کنید.
onion-is = آدرس پیازی این سایت:
contact = تماس:

## The landing page.
landing-title = اسناد را به‌صورت امن برای ما بفرستید
landing-intro = این یک صندوق امن است. می‌توانید بدون ساختن حساب کاربری و بدون اینکه بگویید چه کسی هستید، برای ما سند و پیام بفرستید.
instructions-title = پیش از ارسال
safety-title = امنیت خود را حفظ کنید
safety-tor = از مرورگر تور استفاده کنید و سطح امنیت آن را روی «ایمن‌ترین» بگذارید.
safety-device = از دستگاه و شبکه‌ای استفاده کنید که متعلق به کارفرمای شما نباشد.
safety-encrypted = فایل‌های شما به محض رسیدن رمزگذاری می‌شوند؛ فقط تحریریه می‌تواند آن‌ها را بخواند، آن هم روی رایانه‌ای که هرگز به اینترنت وصل نمی‌شود.
safety-code = پس از نخستین ارسال، یک کد دریافت می‌کنید. این کد تنها راه بازگشت به گفت‌وگوی شما با ماست: هیچ‌کس نمی‌تواند آن را بازیابی کند.
start = ارسال سند یا پیام
returning = قبلاً چیزی فرستاده‌اید؟ با کد خود وارد شوید
retention-title = مدت نگهداری در این سایت
retention-items = آنچه می‌فرستید { $days } روز پس از رسیدن، از این سرور حذف می‌شود.
retention-pulled = آنچه می‌فرستید { $days } روز پس از آنکه تحریریه آن را دانلود کند، از این سرور حذف می‌شود.
retention-inactive = اگر { $days } روز وارد نشوید، گفت‌وگوی شما همراه با پاسخ‌های تحریریه حذف می‌شود و کدتان دیگر کار نمی‌کند.

## The form for documents and a message.
submit-title = ارسال سند یا پیام
desk-legend = چه کسی آن را دریافت کند؟
desk-advice = فقط بخشی که انتخاب می‌کنید می‌تواند آنچه را می‌فرستید بخواند، چه اکنون و چه بعداً.
message-label = پیام
message-limit = حداکثر { $chars } کاراکتر.
files-label = فایل‌ها
files-limit = حداکثر { $count } فایل، در مجموع تا { $size }.
send = ارسال

## The page that shows a new source its code.
code-title = متشکریم. این کد را نگه دارید.
code-paper = این کد را روی کاغذ بنویسید و در جای امنی، دور از دستگاه‌هایتان، نگه دارید.
code-back = با این کد می‌توانید بعداً برگردید، پاسخ‌های ما را بخوانید و باز هم بفرستید.
code-once = این کد فقط همین یک بار نمایش داده می‌شود. هیچ‌کس، حتی ما، نمی‌تواند آن را بازیابی کند.
code-english = کد از کلمه‌های انگلیسی تشکیل شده است، به هر زبانی که این سایت را ببینید: آن‌ها را دقیقاً همان‌طور که نشان داده شده‌اند بنویسید.
go-inbox = رفتن به صندوق ورودی

## Logging in.
login-title = ورود با کد
code-label = کد شما (8 کلمه)
code-hint = همان 8 کلمه انگلیسی که دریافت کرده‌اید، با فاصله میان کلمه‌ها.
log-in = ورود
login-failed-title = ورود ناموفق بود
login-failed = این کد چیزی را باز نکرد. کلمه‌ها را بررسی کنید و دوباره تلاش کنید.

## The inbox.
inbox-title = صندوق ورودی شما
received = در { $day } دریافت شد: { $what }.
received-messages = { $n } پیام
received-files = { $n } فایل
received-both = { $messages } و { $files }
received-again = به‌سلامت رسید؛ لازم نیست دوباره آن را بفرستید.
your-desk = در گفت‌وگو با:
new-code-title = کد جدید شما
new-code-advice = همین حالا این کد جدید را یادداشت کنید. کد قدیمی شما تا زمانی که در پایین صفحه تأیید نکرده‌اید کار می‌کند؛ پس از آن فقط کد جدید صندوق ورودی شما را باز می‌کند.
new-code-confirm = کد جدیدم را یادداشت کرده‌ام
replies-title = پاسخ‌های تحریریه
no-replies = هنوز پاسخی نرسیده است. بعداً دوباره سر بزنید.
reply-unreadable = این پاسخ باز نشد.
delete-reply = حذف این پاسخ
follow-up-title = ارسال بیشتر
log-out = خروج
closed-title = گفت‌وگو بسته شد
closed = تحریریه این گفت‌وگو را بسته و آن را همراه با پاسخ‌هایش از سرور حذف کرده است. کد شما دیگر کار نمی‌کند. اگر می‌خواهید چیز تازه‌ای بفرستید، ارسال جدیدی را آغاز کنید: کد جدیدی دریافت خواهید کرد.

## Refusals and errors.
back = بازگشت به صفحه نخست
nothing-kept = از این تلاش چیزی نگه داشته نشد.
error-label = خطا:
form-expired-title = فرم منقضی شده است
form-expired = این فرم از این سایت فرستاده نشده یا منقضی شده است. به صفحه قبل برگردید، صفحه را تازه کنید و دوباره تلاش کنید.
form-unreadable-title = فرم خوانده نشد
form-unreadable = فرم خوانده نشد. به صفحه قبل برگردید و دوباره تلاش کنید.
too-slow-title = مهلت تمام شد
too-slow = رسیدن فرم بیش از حد طول کشید. به صفحه قبل برگردید و دوباره تلاش کنید.
too-large-title = حجم بیش از حد
too-large = حجم ارسال شما از سقف { $limit } بیشتر است. فایل‌های کمتر یا کوچک‌تری بفرستید، یا آن‌ها را در چند ارسال بفرستید.
too-many-files-title = تعداد فایل‌ها بیش از حد است
too-many-files = در هر بار حداکثر { $count } فایل می‌توانید بفرستید. بقیه را در ارسال دیگری بفرستید.
message-too-long-title = پیام بیش از حد طولانی است
message-too-long = هر پیام حداکثر می‌تواند { $chars } کاراکتر باشد. متن طولانی‌تر را در یک فایل بگذارید.
message-not-text-title = پیام خوانده نشد
message-not-text = پیام به‌صورت متن خوانده نشد. به جای آن، پیام را در یک فایل بگذارید.
empty-title = چیزی برای ارسال نیست
empty = یک پیام بنویسید یا دست‌کم یک فایل انتخاب کنید.
upload-failed-title = بارگذاری ناموفق بود
upload-failed = بارگذاری به‌طور کامل خوانده نشد. لطفاً دوباره تلاش کنید.
busy-title = سایت شلوغ است
busy-server = سرور در حال حاضر شلوغ است. لطفاً چند دقیقه دیگر دوباره تلاش کنید.
busy-uploads = در حال حاضر بارگذاری‌های زیادی در جریان است. لطفاً چند دقیقه دیگر دوباره تلاش کنید.
busy-rate = این سایت در حال حاضر ارسال‌های زیادی دریافت می‌کند، برای همین تا مدت کوتاهی ارسال تازه‌ای نمی‌پذیرد. چیزی ذخیره نشد. لطفاً چند دقیقه دیگر دوباره تلاش کنید.
no-space-title = فضا کافی نیست
no-space-server = فضای دیسک سرور در حال حاضر کم است. لطفاً بعداً دوباره تلاش کنید.
no-space-uploads = سرور در حال حاضر برای بارگذاری‌های جدید جا ندارد. لطفاً بعداً دوباره تلاش کنید.
gone-title = گفت‌وگو بسته شد
gone = تحریریه این گفت‌وگو را بسته است. اگر می‌خواهید باز هم بفرستید، ارسال جدیدی را آغاز کنید.
no-desk-title = گیرنده را انتخاب کنید
no-desk = بخشی را که ارسال شما برای آن است انتخاب کنید. چیزی فرستاده نشد.
unknown-desk-title = بخش ناشناخته
unknown-desk = بخشی که انتخاب کردید اینجا وجود ندارد (یا دیگر وجود ندارد). صفحه را تازه کنید و دوباره انتخاب کنید. چیزی فرستاده نشد.
desk-closed-title = بخش بسته شده است
desk-closed = بخشی که با آن در گفت‌وگو بودید دیگر ارسال نمی‌پذیرد. همچنان می‌توانید وارد شوید و پاسخ‌هایش را بخوانید. چیزی فرستاده نشد.
server-error-title = خطای سرور
server-error = مشکلی در سمت ما پیش آمد. لطفاً بعداً دوباره تلاش کنید.
session-ended-title = نشست پایان یافت
session-ended = نشست شما پایان یافته است، برای همین چیزی فرستاده نشد. دوباره با کد خود وارد شوید و سپس فایل‌هایتان را بفرستید.
not-found-title = صفحه پیدا نشد
not-found = در این آدرس صفحه‌ای وجود ندارد.
no-reply-title = پیدا نشد
no-reply = چنین پاسخی وجود ندارد.
not-allowed-title = مجاز نیست
not-allowed = از این صفحه نمی‌توان این‌گونه استفاده کرد.
